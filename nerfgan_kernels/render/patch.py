"""Swap our renderer into an existing EG3D-style generator object, in place."""

from __future__ import annotations

from dataclasses import dataclass

from .rays import RaySampler
from .renderer import ImportanceRenderer


@dataclass
class Patch:
    """What ``patch_eg3d_generator`` replaced; ``restore()`` puts it back."""

    generator: object
    renderer: object
    ray_sampler: object = None  # None when the ray sampler was left alone

    def restore(self) -> None:
        self.generator.renderer = self.renderer
        if self.ray_sampler is not None:
            self.generator.ray_sampler = self.ray_sampler


def patch_eg3d_generator(G, renderer: ImportanceRenderer | None = None,
                         ray_sampler: bool = True) -> Patch:
    """Replace ``G.renderer`` (and ``G.ray_sampler`` unless ``ray_sampler=False``) of an
    EG3D-style generator with this package's, in place.

    Works on any object with a ``renderer`` attribute (EG3D's ``TriPlaneGenerator``, a subclass,
    or a look-alike); EG3D calls ``G.renderer(planes, G.decoder, ray_origins, ray_directions,
    G.rendering_kwargs)`` and ``G.ray_sampler(cam2world, intrinsics, resolution)``, which the new
    modules accept unchanged. ``G.rendering_kwargs`` and ``G.decoder`` are left as they are.

    Args:
        G: the generator.
        renderer: the renderer to install (default ``ImportanceRenderer()``, the fused kernels).
        ray_sampler: also install ``RaySampler()`` (same rays as EG3D's).

    Returns:
        a ``Patch`` holding the old modules; ``patch.restore()`` undoes the swap.
    """
    if not hasattr(G, "renderer"):
        raise ValueError(f"G must have a 'renderer' attribute (an EG3D-style generator), got "
                         f"{type(G).__name__}")
    if ray_sampler and not hasattr(G, "ray_sampler"):
        raise ValueError(f"G has no 'ray_sampler' attribute to replace ({type(G).__name__}); pass "
                         "ray_sampler=False to swap only the renderer")
    if renderer is not None and not callable(renderer):
        raise ValueError(f"renderer must be callable (a renderer module), got {type(renderer).__name__}")
    patch = Patch(G, G.renderer, G.ray_sampler if ray_sampler else None)
    G.renderer = renderer if renderer is not None else ImportanceRenderer()
    if ray_sampler:
        G.ray_sampler = RaySampler()
    return patch
