"""The generator protocol: everything the inversion methods use of a generator, and nothing else.

``TriPlaneGenerator`` (nerfgan_kernels.models) implements it; ``tests/mlp_generator.py`` is the
adapter example for a generator that is not a tri-plane one, and ``tests/test_protocol.py`` runs
every method on a generator that implements exactly this protocol and raises on any other
attribute. Generators are ``torch.nn.Module`` s: of the module interface the methods use
``state_dict``, ``load_state_dict``, ``named_parameters``, ``parameters`` and ``requires_grad_``.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import torch

from nerfgan_kernels.models.metadata import GeneratorMetadata

PointQuery = Callable[[torch.Tensor, torch.Tensor], dict]


@runtime_checkable
class NeRFGenerator(Protocol):
    """A 3D-aware generator conditioned on EG3D cameras (25-vectors, render.cameras).

    z_dim, w_dim, num_ws, img_resolution: sizes; w_avg (w_dim,): the mapping's mean latent;
    metadata: camera geometry and alignment convention (``GeneratorMetadata``); ray_range:
    (near, far) depths of its rays."""

    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    w_avg: torch.Tensor
    metadata: GeneratorMetadata
    ray_range: tuple[float, float]

    def mapping(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z (B, z_dim), c (B, 25) -> ws (B, num_ws, w_dim)."""

    def synthesis(self, ws: torch.Tensor, c: torch.Tensor, **options) -> dict:
        """ws (B, num_ws, w_dim), c (B, 25) -> {'image' (B, 3, H, W) in [-1, 1], 'image_depth'
        (B, 1, h, w), 'weights_sum' (B, h*w, 1) accumulated opacity, ...}. Keyword options
        (``noise_mode``, ``deterministic``, ``render_overrides``) are ignored where unknown."""

    def point_query(self, ws: torch.Tensor) -> PointQuery:
        """ws (K, num_ws, w_dim) -> query(coords (Kc, M, 3), dirs (Kc, M, 3)) -> {'rgb': (K, M, C)
        with colour in the first 3 channels, 'sigma': (K, M, 1)}, Kc = K or 1 (broadcast)."""

    def ray_samples(self, ws: torch.Tensor, cameras: torch.Tensor, resolution: int):
        """The generator's own sample points on resolution^2 rays of each camera (V, 25) for each
        latent (K): coords (K, V*R, S, 3), dirs (K, V*R, S, 3), depths (K, V*R, S, 1); or None
        where it has no sampler of its own (the regularizers then sample stratified in
        ``ray_range``)."""

    def noise_buffers(self) -> dict[str, torch.Tensor]:
        """name (state-dict key) -> constant noise input optimized by projection ({} if none)."""

    def params_to_tune(self, subset: str = "all") -> list[torch.nn.Parameter]:
        """The parameter group ``subset`` (every generator has 'all'); ValueError if unknown."""

    def clone(self) -> "NeRFGenerator":
        """A frozen deep copy (the regularizers' reference G0)."""


def trainable_parameters(generator: NeRFGenerator, subset: str = "all") -> tuple[list, dict]:
    """Freeze the generator except ``generator.params_to_tune(subset)``; returns those parameters
    and a {state-dict name: parameter} map of them (for checkpoints, deltas and EMAs)."""
    params = list(generator.params_to_tune(subset))
    for p in generator.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    names = {id(p): n for n, p in generator.named_parameters()}
    return params, {names[id(p)]: p for p in params}
