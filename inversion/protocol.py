"""The few generator capabilities the methods use beyond docs/design.md's protocol, each with a
fallback on the protocol itself, so any generator that implements the protocol runs.

- ``point_query(G, ws)``: a function (coords (K, M, 3), dirs (K, M, 3)) -> {'rgb', 'sigma'} for
  the latents ``ws`` (K, num_ws, w_dim). Tri-plane generators (attributes ``planes``, ``renderer``,
  ``decoder``) compute the planes once and reuse them for every chunk; others call
  ``G.sample_mixed`` per chunk.
- ``noise_buffers(G)``: the StyleGAN-style constant noise inputs (names containing 'noise_const').
- ``synthesize(G, ws, c, **kw)``: ``G.synthesis`` with keyword options.
"""

from __future__ import annotations

import torch


def point_query(generator, ws: torch.Tensor):
    """ws (K, num_ws, w_dim) -> query(coords (Kc, M, 3), dirs (Kc, M, 3)) -> {'rgb': (K, M, C),
    'sigma': (K, M, 1)}, Kc = K or 1 (one point set broadcast to all K latents)."""
    if all(hasattr(generator, a) for a in ("planes", "renderer", "decoder", "rendering_kwargs")):
        planes = generator.planes(ws)
        box_warp = generator.rendering_kwargs.get("box_warp", 1.0)

        def query(coords, dirs):
            return generator.renderer.sample_mixed(planes, generator.decoder, coords, dirs, box_warp)
        return query

    def query(coords, dirs):
        if coords.shape[0] != ws.shape[0]:
            coords, dirs = (t.expand(ws.shape[0], *t.shape[1:]) for t in (coords, dirs))
        return generator.sample_mixed(coords, dirs, ws)
    return query


def noise_buffers(generator) -> dict[str, torch.Tensor]:
    return {n: b for n, b in generator.named_buffers() if "noise_const" in n}


def ray_range(generator) -> tuple[float, float]:
    """(near, far) depths for sampling rays: the generator's ``ray_range`` or EG3D's
    rendering_kwargs ray_start/ray_end (FFHQ's 2.25, 3.3 otherwise)."""
    if hasattr(generator, "ray_range"):
        return tuple(generator.ray_range)
    rk = getattr(generator, "rendering_kwargs", {}) or {}
    start, end = rk.get("ray_start", 2.25), rk.get("ray_end", 3.3)
    if start == "auto" or end == "auto":
        return 2.25, 3.3
    return float(start), float(end)


def synthesize(generator, ws: torch.Tensor, c: torch.Tensor, **kwargs) -> dict:
    """``generator.synthesis(ws, c, **kwargs)``: the protocol's synthesis takes keyword options
    (``noise_mode``, ``deterministic``, ``render_overrides``) and ignores those it does not know
    (EG3D's own ``synthesis`` takes ``**synthesis_kwargs`` too)."""
    return generator.synthesis(ws, c, **kwargs)


def trainable_parameters(generator, subset: str = "all") -> tuple[list, dict]:
    """Freeze the generator except ``generator.params_to_tune(subset)``; returns those parameters
    and a {state-dict name: parameter} map of them (for checkpoints, deltas and EMAs)."""
    params = list(generator.params_to_tune(subset))
    for p in generator.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    names = {id(p): n for n, p in generator.named_parameters()}
    return params, {names[id(p)]: p for p in params}
