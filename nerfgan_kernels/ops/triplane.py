"""Tri-plane feature sampling (EG3D's ``sample_from_planes``) as a fused op."""

from __future__ import annotations

import math

import torch

from .. import _checks
from .._ext import kernel_for
from . import _reference

REDUCTIONS = ("none", "mean", "sum")


def _validate(planes, coords, box_warp, reduce) -> None:
    _checks.check_tensor(planes, "planes", "(Np, 3, C, H, W)", dim=5, sizes={1: 3})
    if planes.shape[3] == 0 or planes.shape[4] == 0:
        raise ValueError(f"planes must have shape (Np, 3, C, H, W) with H, W >= 1, got {tuple(planes.shape)}")
    _checks.check_tensor(coords, "coords", "(Nc, M, 3)", dim=3, sizes={2: 3})
    _checks.check_float(planes, "planes")
    _checks.check_geometry(coords, "coords", planes, "planes")
    _checks.broadcast_batch(planes.shape[0], "planes", coords.shape[0], "coords")
    if not (isinstance(box_warp, (int, float)) and math.isfinite(box_warp) and box_warp > 0):
        raise ValueError(f"box_warp must be a positive number, got {box_warp!r}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")


def triplane_sample(planes: torch.Tensor, coords: torch.Tensor, box_warp: float = 1.0,
                    reduce: str = "none") -> torch.Tensor:
    """Sample tri-plane features at 3D points, exactly as EG3D's ``sample_from_planes``.

    Args:
        planes: (Np, 3, C, H, W) feature planes (EG3D's layout; a channels-last tensor, i.e. a
            permuted view of a contiguous (Np, 3, H, W, C) tensor, avoids one copy).
        coords: (Nc, M, 3) points in world units. Np == Nc, or one of them is 1 and is broadcast
            (many latents at shared points, or many point sets on one latent).
        box_warp: side of the cube [-box_warp/2, box_warp/2]^3 that maps onto the planes.
        reduce: "none" -> (N, 3, M, C) per-plane features; "mean" / "sum" -> (N, M, C).

    Points are scaled by 2 / box_warp and projected as plane 0 = (x, y), plane 1 = (x, z),
    plane 2 = (z, x) (EG3D's quirk); bilinear with align_corners=False and zero padding, so points
    outside the box read zeros. Gradients flow to planes and coords (once differentiable: no
    double backward). The op is ``torch.ops.nerfgan_kernels.triplane_sample`` (fake kernel,
    autograd and autocast registered: torch.compile traces it without a graph break).

    dtypes (the mixed-dtype contract): planes float32, float64 or bfloat16 (CPU and CUDA) or
    float16 (CUDA); coords float64 with float64 planes, else float32 (never rounded to half).
    Accumulation in float32 (float64 for float64); the output and the planes' gradient have the
    planes' dtype, the coords' gradient the coords'. Under autocast, planes are cast to the
    autocast dtype and coords stay float32. Equals ``_reference.triplane_sample`` to float
    rounding.
    """
    _validate(planes, coords, box_warp, reduce)
    ext = kernel_for(planes.device, "triplane_sample")
    if ext is None:
        return _reference.triplane_sample(planes, coords, box_warp, reduce)
    return ext.triplane_sample(planes, coords, float(box_warp), reduce)
