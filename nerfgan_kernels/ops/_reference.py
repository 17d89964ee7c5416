"""Pure-PyTorch reference implementations of the ops, with the same signatures.

They are written from EG3D's semantics (docs/eg3d.md) with plain torch ops, and
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
    Returns (N, 3, M, C) for reduce="none", else (N, M, C) (mean or sum over the planes), in the
    planes' dtype. Half-precision planes (the mixed-dtype contract: coords float32) are sampled
    in the coords' precision.
    """
    if planes.dtype != coords.dtype:
        return triplane_sample(planes.to(coords.dtype), coords, box_warp, reduce).to(planes.dtype)
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
    forward value; its gradient there would be NaN). Half-precision colours and densities (the
    mixed-dtype contract: depths float32) are marched in the depths' precision; rgb comes back in
    the colours' dtype, depth and weights in the depths'.
    """
    if colors.dtype != depths.dtype:
        rgb, depth, weights = composite(colors.to(depths.dtype), densities.to(depths.dtype), depths,
                                        white_back=white_back, t_min=t_min, alpha_min=alpha_min,
                                        depth_range=depth_range)
        return rgb.to(colors.dtype), depth, weights
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


# ---- importance sampling

def importance_u(depths_coarse: torch.Tensor, n: int, *, u=None, generator=None,
                 deterministic: bool = False) -> torch.Tensor:
    """The uniform numbers of ``sample_pdf`` for depths_coarse (N, R, D, 1).

    deterministic: linspace(0, 1, n) of shape (n,), shared by every ray. Else the given ``u``
    ((N*R, n) or (N, R, n)) as (N*R, n), or, without one, U[0, 1) of shape (N*R, n) from
    ``torch.rand(..., generator=generator)``; rows are batch-major, then ray (EG3D's layout).
    Drawn in depths_coarse's dtype and device.
    """
    N, R = depths_coarse.shape[:2]
    opts = {"dtype": depths_coarse.dtype, "device": depths_coarse.device}
    if deterministic:
        return torch.linspace(0, 1, n, **opts)
    if u is not None:
        return u.reshape(N * R, n)
    return torch.rand(N * R, n, generator=generator, **opts)


def sample_pdf(depths_coarse: torch.Tensor, weights_coarse: torch.Tensor, n: int, *, u=None,
               generator=None, deterministic: bool = False) -> torch.Tensor:
    """Reference of EG3D's importance sampling (``sample_importance`` + ``sample_pdf``).

    depths_coarse (N, R, D, 1) sorted per ray, D >= 4; weights_coarse (N, R, D-1, 1) the coarse
    march weights; u as in ``importance_u``. Returns the fine depths (N, R, n, 1), unsorted,
    without gradient. Written as EG3D writes it: max-pool and avg-pool smoothing + 0.01, midpoint
    bins, pdf of the interior D-3 weights + 1e-5, CDF with a leading 0, searchsorted(right=True).
    """
    N, R, D, _ = depths_coarse.shape
    u = importance_u(depths_coarse, n, u=u, generator=generator, deterministic=deterministic)
    rays = N * R
    if rays == 0 or n == 0:
        return depths_coarse.new_zeros((N, R, n, 1))
    with torch.no_grad():
        z = depths_coarse.reshape(rays, D)
        w = F.max_pool1d(weights_coarse.reshape(rays, 1, D - 1), 2, 1, padding=1)
        w = F.avg_pool1d(w, 2, 1).squeeze(1) + 0.01
        bins = 0.5 * (z[:, :-1] + z[:, 1:])
        w = w[:, 1:-1] + 1e-5
        pdf = w / torch.sum(w, -1, keepdim=True)
        cdf = torch.cumsum(pdf, -1)
        cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1)  # (rays, D-2)
        u = u.expand(rays, n).contiguous()
        k = torch.searchsorted(cdf, u, right=True)
        below = torch.clamp_min(k - 1, 0)
        above = torch.clamp_max(k, D - 3)
        cdf_below, cdf_above = cdf.gather(1, below), cdf.gather(1, above)
        bins_below, bins_above = bins.gather(1, below), bins.gather(1, above)
        denom = cdf_above - cdf_below
        denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
        t = bins_below + (u - cdf_below) / denom * (bins_above - bins_below)
    return t.reshape(N, R, n, 1)


def merge_samples(depths_a: torch.Tensor, values_a, depths_b: torch.Tensor, values_b):
    """Reference merge: EG3D's ``unify_samples`` with a stable sort (ties: a before b).

    depths_a (N, R, Sa, 1), depths_b (N, R, Sb, 1); values_a / values_b sequences of tensors
    (N, R, Sa, C_k) / (N, R, Sb, C_k). Returns the depths (N, R, Sa+Sb, 1) ascending per ray
    (no gradient) and the list of values reordered the same way (gradients flow to the values).
    """
    depths, order = torch.sort(torch.cat([depths_a, depths_b], -2).detach(), dim=-2, stable=True)
    values = [torch.gather(torch.cat([va, vb], -2), -2, order.expand(-1, -1, -1, va.shape[-1]))
              for va, vb in zip(values_a, values_b)]
    return depths, values


# ---- fused renderer (issue 18): the chain of the reference ops above + EG3D's OSG decoder

def decode_features(features: torch.Tensor, decoder) -> tuple[torch.Tensor, torch.Tensor]:
    """EG3D's OSG decoder on plane-averaged features (..., C) with decoder tensors ``decoder``
    (a ``TriplaneDecoder``): linear -> softplus -> linear. Returns features (..., F) =
    sigmoid(out[..., 1:]) * (1 + 2e-3) - 1e-3 and the raw density (..., 1) = out[..., :1]."""
    h = F.softplus(F.linear(features, decoder.weight0.to(features.dtype),
                            decoder.bias0.to(features.dtype)))
    out = F.linear(h, decoder.weight1.to(features.dtype), decoder.bias1.to(features.dtype))
    return torch.sigmoid(out[..., 1:]) * (1 + 2e-3) - 1e-3, out[..., :1]


def decode_triplane(planes: torch.Tensor, decoder, coords: torch.Tensor, box_warp: float = 1.0):
    """Reference of ``decode_triplane``: planes (Np, 3, C, H, W), coords (Nc, M, 3) ->
    features (N, M, F), density (N, M, 1)."""
    return decode_features(triplane_sample(planes, coords, box_warp, "mean"), decoder)


def render_triplane(planes: torch.Tensor, decoder, ray_origins: torch.Tensor,
                    ray_directions: torch.Tensor, depths: torch.Tensor, *, box_warp: float = 1.0,
                    white_back: bool = False, t_min: float = 0.0, alpha_min: float = 0.0,
                    depth_range=None, return_densities: bool = False):
    """Reference of ``render_triplane``: samples at o + t d, the decoder, then ``composite``
    (every sample decoded: ``return_densities`` gives them all).

    planes (Np, 3, C, H, W), ray_origins / ray_directions (Nr, R, 3), depths (Nd, R, S, 1);
    Np, Nr, Nd equal or 1. Returns rgb (N, R, F), depth (N, R, 1), weights (N, R, S-1, 1),
    weights_sum (N, R, 1)."""
    N = max(planes.shape[0], ray_origins.shape[0], depths.shape[0])
    R, S = depths.shape[1], depths.shape[2]
    coords = ray_origins.unsqueeze(-2) + depths * ray_directions.unsqueeze(-2)  # (Nr|Nd, R, S, 3)
    colors, densities = decode_triplane(planes, decoder, coords.reshape(coords.shape[0], R * S, 3),
                                        box_warp)
    colors = colors.reshape(N, R, S, -1)
    densities = densities.reshape(N, R, S, 1)
    rgb, depth, weights = composite(colors, densities, depths.expand(N, R, S, 1),
                                    white_back=white_back, t_min=t_min, alpha_min=alpha_min,
                                    depth_range=depth_range)
    if return_densities:
        return rgb, depth, weights, weights.sum(2), densities.detach()
    return rgb, depth, weights, weights.sum(2)
