"""Pure-PyTorch reference implementations of the fused ops, with the same signatures.

They are written from EG3D's semantics (shared docs/eg3d-reference.md) with plain torch ops, and
are what the kernels are tested against and what the package falls back to without the extension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def project_onto_planes(coords: torch.Tensor, box_warp: float = 1.0) -> torch.Tensor:
    """EG3D's plane projection. coords (N, M, 3) -> (N, 3, M, 2) normalized plane coordinates.

    Plane 0 takes (x, y), plane 1 (x, z) and plane 2 (z, x) (EG3D's quirk), after scaling by
    2 / box_warp so that the box [-box_warp/2, box_warp/2]^3 maps to [-1, 1]^3.
    """
    x = coords * (2.0 / box_warp)
    return torch.stack([x[..., [0, 1]], x[..., [0, 2]], x[..., [2, 0]]], dim=1)


def triplane_sample(planes: torch.Tensor, coords: torch.Tensor, box_warp: float = 1.0,
                    reduce: str = "none") -> torch.Tensor:
    """Reference tri-plane sampling, one ``grid_sample`` call over all planes as EG3D does.

    planes (Np, 3, C, H, W), coords (Nc, M, 3), Np == Nc or one of them 1; N = broadcast batch.
    Returns (N, 3, M, C) for reduce="none", else (N, M, C) (mean or sum over the planes).
    """
    Np, _, C, H, W = planes.shape
    Nc, M, _ = coords.shape
    N = Nc if Np == 1 else Np
    uv = project_onto_planes(coords, box_warp)  # (Nc, 3, M, 2)
    if M == 0 or N == 0:
        out = planes.new_zeros((N, 3, M, C)) + 0 * planes.sum() + 0 * coords.sum()
    elif Np == 1 and Nc > 1:
        # Many coordinate sets on one plane set: one batch of 3 planes with all points.
        grid = uv.transpose(0, 1).reshape(3, Nc * M, 1, 2)
        out = F.grid_sample(planes[0], grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (3, C, Nc*M, 1)
        out = out.reshape(3, C, Nc, M).permute(2, 0, 3, 1)
    else:
        grid = uv.expand(N, 3, M, 2).reshape(N * 3, M, 1, 2)
        feats = planes.expand(N, 3, C, H, W).reshape(N * 3, C, H, W)
        out = F.grid_sample(feats, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (N*3, C, M, 1)
        out = out.reshape(N, 3, C, M).permute(0, 1, 3, 2)
    if reduce == "none":
        return out
    if reduce == "mean":
        return out.mean(dim=1)
    if reduce == "sum":
        return out.sum(dim=1)
    raise ValueError(f'reduce must be one of "none", "mean", "sum", got {reduce!r}')


# ---- compositing (ray marcher)

def composite(colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, *,
              white_back: bool = False, t_min: float = 0.0, alpha_min: float = 0.0,
              depth_range=None):
    """Reference of EG3D's MipRayMarcher2 (softplus clamp mode) with the same masking contract.

    colors (N, R, S, C), densities (N, R, S, 1) raw, depths (N, R, S, 1) sorted per ray.
    Returns rgb (N, R, C) = 2 * composite - 1, depth (N, R, 1), weights (N, R, S-1, 1).
    With t_min = alpha_min = 0 this is EG3D's computation; otherwise intervals whose alpha is
    below alpha_min, or that start with transmittance below t_min, are skipped (weight 0,
    transmittance unchanged). depth_range = (lo, hi) clamps the depth (default: min/max of
    ``depths``). Division by a zero weight total gives depth ``hi`` with zero gradient (EG3D's
    forward value; its gradient there would be NaN).
    """
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    densities_mid = F.softplus((densities[:, :, :-1] + densities[:, :, 1:]) / 2 - 1)
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    alpha = 1 - torch.exp(-(densities_mid * deltas))
    if alpha_min > 0:
        alpha = torch.where(alpha < alpha_min, torch.zeros_like(alpha), alpha)
    factors = torch.where(alpha > 0, 1 - alpha + 1e-10, torch.ones_like(alpha)) if alpha_min > 0 \
        else 1 - alpha + 1e-10
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), factors], -2), -2)
    transmittance = transmittance[:, :, :-1]
    if t_min > 0:  # once below t_min the ray stays terminated
        terminated = (transmittance < t_min).to(torch.uint8).cummax(dim=-2).values.bool()
        alpha = torch.where(terminated, torch.zeros_like(alpha), alpha)
    weights = alpha * transmittance
    rgb = torch.sum(weights * colors_mid, -2)
    weight_total = weights.sum(2)
    if depth_range is None:
        lo, hi = (depths.min(), depths.max()) if depths.numel() else (0.0, 0.0)
    else:
        lo, hi = depth_range
    lo = torch.as_tensor(lo, dtype=depths.dtype, device=depths.device)
    hi = torch.as_tensor(hi, dtype=depths.dtype, device=depths.device)
    weighted = torch.sum(weights * depths_mid, -2)
    safe_total = torch.where(weight_total > 0, weight_total, torch.ones_like(weight_total))
    depth = torch.where(weight_total > 0, weighted / safe_total, torch.full_like(weighted, float("inf")))
    depth = torch.clamp(depth, lo, hi)
    if white_back:
        rgb = rgb + 1 - weight_total
    return rgb * 2 - 1, depth, weights
