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
