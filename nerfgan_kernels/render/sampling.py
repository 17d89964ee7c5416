"""Stratified (coarse) depth samples along rays, as EG3D's ``sample_stratified`` (reference 4.1)."""

from __future__ import annotations

import math

import torch

from .. import _checks


def _limit(value, name: str, N: int, R: int, device, dtype):
    """A ray limit as a float, or as an (N, R, 1, 1) tensor for per-ray limits."""
    if isinstance(value, torch.Tensor):
        _checks.check_tensor(value, name, f"(N, R, 1) = ({N}, {R}, 1)", dim=3, sizes={0: N, 1: R, 2: 1})
        return value.detach().to(device=device, dtype=dtype).unsqueeze(-1)
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number or an (N, R, 1) tensor, got {value!r}")
    return float(value)


def stratified_depths(N: int, R: int, depth_resolution: int, ray_start, ray_end, *,
                      disparity_space: bool = False, deterministic: bool = False,
                      jitter: torch.Tensor | None = None, generator: torch.Generator | None = None,
                      device=None, dtype=torch.float32) -> torch.Tensor:
    """Depths of D = ``depth_resolution`` stratified samples on each of N x R rays.

    depths = linspace(ray_start, ray_end, D) + jitter * (ray_end - ray_start) / (D - 1), with
    jitter ~ U[0, 1) per sample (EG3D; a sample may land past ray_end). With
    ``disparity_space`` the same is done on s in [0, 1] and mapped to
    1 / (1/ray_start * (1 - s) + 1/ray_end * s), linear in inverse depth.

    Args:
        N, R: batch and rays per batch item.
        depth_resolution: D >= 2 samples per ray.
        ray_start, ray_end: floats, or (N, R, 1) tensors (per-ray limits, e.g. from
            ``ray_box_intersect``).
        deterministic: jitter 0, so the depths are exactly the linspace values.
        jitter: injected (N, R, D, 1) fractions of the bin width (EG3D's U[0, 1) draws, as the
            fixtures store them); overrides ``deterministic`` and ``generator``.
        generator: torch.Generator for the U[0, 1) draws (default: torch's global RNG).

    Returns:
        (N, R, D, 1) depths of dtype ``dtype`` on ``device``, sorted per ray when the jitter is in
        [0, 1). No gradient.
    """
    D = depth_resolution
    if not (isinstance(D, int) and D >= 2):
        raise ValueError(f"depth_resolution must be an int >= 2, got {D!r}")
    for value, name in ((N, "N"), (R, "R")):
        if not (isinstance(value, int) and value >= 0):
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    start = _limit(ray_start, "ray_start", N, R, device, dtype)
    end = _limit(ray_end, "ray_end", N, R, device, dtype)
    if jitter is not None:
        _checks.check_tensor(jitter, "jitter", f"(N, R, D, 1) = ({N}, {R}, {D}, 1)", dim=4,
                             sizes={0: N, 1: R, 2: D, 3: 1})
        jitter = jitter.detach().to(device=device, dtype=dtype)
    elif not deterministic:
        jitter = torch.rand((N, R, D, 1), generator=generator, dtype=dtype,
                            device=device if generator is None else generator.device).to(device)
    per_ray = isinstance(start, torch.Tensor) or isinstance(end, torch.Tensor)
    if disparity_space:
        s = torch.linspace(0, 1, D, device=device, dtype=dtype).reshape(1, 1, D, 1).repeat(N, R, 1, 1)
        if jitter is not None:
            s = s + jitter * (1 / (D - 1))
        return 1.0 / (1.0 / start * (1.0 - s) + 1.0 / end * s)
    if per_ray:
        # EG3D's math_utils.linspace: start + arange(D) / (D - 1) * (end - start).
        start = start if isinstance(start, torch.Tensor) else torch.full((N, R, 1, 1), start, device=device, dtype=dtype)
        end = end if isinstance(end, torch.Tensor) else torch.full((N, R, 1, 1), end, device=device, dtype=dtype)
        steps = (torch.arange(D, dtype=dtype, device=device) / (D - 1)).reshape(1, 1, D, 1)
        depths = start + steps * (end - start)
        delta = (end - start) / (D - 1)
    else:
        depths = torch.linspace(start, end, D, device=device, dtype=dtype).reshape(1, 1, D, 1).repeat(N, R, 1, 1)
        delta = (end - start) / (D - 1)
    if jitter is not None:
        depths = depths + jitter * delta
    return depths
