"""Volume compositing (EG3D's mip ray marcher) with density masking, as a fused op."""

from __future__ import annotations

import math

import torch

from .. import _checks
from .._ext import kernel_for
from . import _reference

# Defaults of the density masking; see the error bound in composite's docstring.
DEFAULT_T_MIN = 1e-4
DEFAULT_ALPHA_MIN = 1e-6


def _validate(colors, densities, depths, t_min, alpha_min) -> None:
    _checks.check_tensor(colors, "colors", "(N, R, S, C)", dim=4)
    N, R, S, _ = colors.shape
    if S < 1:
        raise ValueError(f"colors must have shape (N, R, S, C) with S >= 1, got {tuple(colors.shape)}")
    for t, name in ((densities, "densities"), (depths, "depths")):
        _checks.check_tensor(t, name, f"(N, R, S, 1) = ({N}, {R}, {S}, 1)", dim=4,
                             sizes={0: N, 1: R, 2: S, 3: 1})
    _checks.check_float(colors, "colors")
    _checks.check_same(colors, "colors", densities, "densities")
    _checks.check_geometry(depths, "depths", colors, "colors")
    for value, name in ((t_min, "t_min"), (alpha_min, "alpha_min")):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value < 1):
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def _depth_range_tensor(depth_range, depths: torch.Tensor) -> torch.Tensor:
    """(2,) tensor [lo, hi] on depths' device; default: min and max of all depths."""
    if depth_range is None:
        if depths.numel() == 0:
            return depths.new_zeros(2)
        lo, hi = torch.aminmax(depths.detach())
        return torch.stack([lo, hi])
    if len(depth_range) != 2:
        raise ValueError(f"depth_range must be (lo, hi), got {depth_range!r}")
    return torch.stack([torch.as_tensor(v, dtype=depths.dtype, device=depths.device).reshape(())
                        for v in depth_range]).detach()


def composite(colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, *,
              white_back: bool = False, t_min: float = DEFAULT_T_MIN,
              alpha_min: float = DEFAULT_ALPHA_MIN, depth_range=None, return_stats: bool = False):
    """EG3D's volume compositing (MipRayMarcher2, softplus clamp mode) with density masking.

    Args:
        colors: (N, R, S, C) per-sample features (any C), S >= 1 samples per ray.
        densities: (N, R, S, 1) raw densities (before EG3D's shifted softplus).
        depths: (N, R, S, 1) sample depths, sorted per ray; no gradient flows to them.
        white_back: add (1 - weight total) to every channel, as EG3D's ShapeNet config.
        t_min: early termination. An interval starting with transmittance below t_min is skipped,
            and so is every later one on that ray.
        alpha_min: empty-space skipping. An interval whose alpha is below alpha_min contributes
            nothing and leaves the transmittance unchanged.
        depth_range: (lo, hi) clamp range of the depth (floats or 0-d tensors). EG3D clamps to the
            min/max of the whole depth tensor; a renderer that chunks rays passes that global range
            so chunking never changes the result. Default: this call's own min/max.
        return_stats: also return (N, R) the number of intervals marched (not skipped).

    Returns:
        rgb (N, R, C) = 2 * sum(w * c_mid) - 1 (EG3D's [-1, 1] convention, all channels),
        depth (N, R, 1) = sum(w * t_mid) / sum(w), clamped to [lo, hi] (hi for empty rays),
        weights (N, R, S-1, 1); and the kept counts when ``return_stats``.

    With t_min = alpha_min = 0 the output equals EG3D's (to float rounding). With masking, each
    output differs from the unmasked one by at most (``eps = t_min + 2 * (S-1) * alpha_min``):
    |rgb| <= 2 * eps * (max|c_mid| + white_back), |weight total| <= eps, and
    |depth| <= 2 * eps * (hi - lo) / (weight total). The defaults t_min = 1e-4 and
    alpha_min = 1e-6 give eps <= 3e-4 for EG3D's 96 samples. The gradient is the exact gradient
    of the masked computation (skipped samples get zero gradient).

    Gradients flow to colors and densities (once differentiable). The op is
    ``torch.ops.nerfgan_kernels.composite`` (fake kernel, autograd and autocast registered).

    dtypes (the mixed-dtype contract): colors and densities float32, float64 or bfloat16 (CPU
    and CUDA) or float16 (CUDA), both the same; depths and depth_range float64 with float64
    colours, else float32 (never rounded to half). The march runs in float32 (float64 for
    float64); rgb has the colours' dtype, depth and weights the depths' dtype. Under autocast,
    colours and densities are cast to the autocast dtype, depths stay float32.
    """
    _validate(colors, densities, depths, t_min, alpha_min)
    range_t = _depth_range_tensor(depth_range, depths)
    ext = kernel_for(colors.device, "composite")
    if ext is None:
        rgb, depth, weights = _reference.composite(
            colors, densities, depths, white_back=white_back, t_min=t_min, alpha_min=alpha_min,
            depth_range=(range_t[0], range_t[1]))
        if return_stats:
            kept = (weights[..., 0] > 0).sum(-1)
            return rgb, depth, weights, kept
        return rgb, depth, weights
    rgb, depth, weights, stats = ext.composite(
        colors, densities, depths.detach(), range_t, bool(white_back), float(t_min),
        float(alpha_min))
    if return_stats:
        return rgb, depth, weights, stats[..., 2].round().long()
    return rgb, depth, weights
