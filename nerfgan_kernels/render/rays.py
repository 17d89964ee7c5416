"""Rays of EG3D cameras (the 25-vector labels of cameras.py): EG3D's ray sampler and the
ray-box intersection of its renderer."""

from __future__ import annotations

import math

import torch

from .. import _checks
from .cameras import check_cameras


def rays_from_matrices(cam2world: torch.Tensor, intrinsics: torch.Tensor, resolution: int):
    """EG3D's ``RaySampler.forward``: cam2world (N, 4, 4), intrinsics (N, 3, 3), resolution n.

    Returns origins (N, n*n, 3) (the camera position, repeated) and unit directions (N, n*n, 3).
    Pixel (i = row, j = column) is ray m = i*n + j with normalized image coordinates
    x = (j + 0.5)/n, y = (i + 0.5)/n (row 0 is the top of the image); the camera-space direction is
    ((x - cx + cy*sk/fy - sk*y/fy)/fx, (y - cy)/fy, 1), mapped by cam2world and normalized
    (eps 1e-12). The operations follow EG3D's order, so the float32 result equals its output.
    """
    _checks.check_tensor(cam2world, "cam2world", "(N, 4, 4)", dim=3, sizes={1: 4, 2: 4})
    _checks.check_tensor(intrinsics, "intrinsics", "(N, 3, 3)", dim=3,
                         sizes={0: cam2world.shape[0], 1: 3, 2: 3})
    _checks.check_float(cam2world, "cam2world")
    _checks.check_same(cam2world, "cam2world", intrinsics, "intrinsics")
    if not (isinstance(resolution, int) and resolution >= 1):
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    N, M, n = cam2world.shape[0], resolution ** 2, resolution
    device, dtype = cam2world.device, cam2world.dtype
    cam_locs_world = cam2world[:, :3, 3]
    fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]
    cx, cy = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None]
    sk = intrinsics[:, 0, 1, None]
    steps = torch.arange(n, dtype=dtype, device=device)
    uv = torch.stack(torch.meshgrid(steps, steps, indexing="ij")) * (1.0 / n) + (0.5 / n)
    uv = uv.flip(0).reshape(2, -1).transpose(1, 0)  # (M, 2) = (x = column, y = row)
    x_cam, y_cam = uv[None, :, 0], uv[None, :, 1]
    z_cam = torch.ones((N, M), dtype=dtype, device=device)
    x_lift = (x_cam - cx + cy * sk / fy - sk * y_cam / fy) / fx * z_cam
    y_lift = (y_cam - cy) / fy * z_cam
    cam_rel_points = torch.stack((x_lift, y_lift, z_cam, torch.ones_like(z_cam)), dim=-1)
    # cam2world @ p as a sum of products, not a matmul: autocast leaves it in float32 (geometry
    # is never half precision), with the same float32 result.
    world_rel_points = (cam2world[:, None, :3, :] * cam_rel_points[:, :, None, :]).sum(-1)
    directions = torch.nn.functional.normalize(world_rel_points - cam_locs_world[:, None, :], dim=2)
    origins = cam_locs_world.unsqueeze(1).repeat(1, M, 1)
    return origins, directions


def camera_rays(c: torch.Tensor, resolution: int):
    """Rays of EG3D 25-vector cameras. c (N, 25) -> origins (N, R, 3), directions (N, R, 3),
    R = resolution**2, in EG3D's pixel order (see ``rays_from_matrices``)."""
    check_cameras(c)
    N = c.shape[0]
    return rays_from_matrices(c[:, :16].reshape(N, 4, 4), c[:, 16:25].reshape(N, 3, 3), resolution)


class RaySampler(torch.nn.Module):
    """Drop-in for EG3D's ``RaySampler``: ``forward(cam2world (N,4,4), intrinsics (N,3,3),
    resolution) -> (origins (N, R, 3), directions (N, R, 3))``. No parameters."""

    def forward(self, cam2world_matrix, intrinsics, resolution):
        return rays_from_matrices(cam2world_matrix, intrinsics, int(resolution))


def ray_box_intersect(origins: torch.Tensor, directions: torch.Tensor, box_side: float):
    """Where rays enter and leave the axis-aligned cube [-box_side/2, box_side/2]^3 (EG3D's
    ``ray_start = ray_end = 'auto'``: ``get_ray_limits_box`` plus the renderer's fill for misses).

    Args:
        origins, directions: (N, R, 3); directions need not be unit (the limits are in units of
            the direction's length). No gradient flows through the limits.
        box_side: side of the cube (EG3D passes ``box_warp``).

    Returns:
        ray_start, ray_end (N, R, 1) and hit (N, R, 1) bool. A ray that starts inside the box has a
        negative start. Rays that miss (or only touch) the box get EG3D's fill over the whole
        batch: start = the smallest start of the hitting rays and end = the **largest start** of
        the hitting rays (EG3D's choice, kept for parity: such a ray samples the front of the box
        region and reads near-zero features). If no ray hits, start = end = 0 for every ray (all
        samples at the origin; the render is empty).
    """
    _checks.check_tensor(origins, "origins", "(N, R, 3)", dim=3, sizes={2: 3})
    _checks.check_tensor(directions, "directions", "(N, R, 3)", dim=3, sizes={2: 3})
    _checks.check_same(origins, "origins", directions, "directions")
    if not (isinstance(box_side, (int, float)) and math.isfinite(box_side) and box_side > 0):
        raise ValueError(f"box_side must be a positive number, got {box_side!r}")
    o, d = origins.detach(), directions.detach()
    half = box_side / 2
    inv = 1 / d
    neg = inv < 0
    near = (torch.where(neg, half, -half) - o) * inv  # (N, R, 3): slab entry per axis
    far = (torch.where(neg, -half, half) - o) * inv
    # EG3D's slab order: x, then y, then z, with the validity tests between the steps.
    tmin, tmax = near[..., 0], far[..., 0]
    valid = ~((tmin > far[..., 1]) | (near[..., 1] > tmax))
    tmin, tmax = torch.maximum(tmin, near[..., 1]), torch.minimum(tmax, far[..., 1])
    valid &= ~((tmin > far[..., 2]) | (near[..., 2] > tmax))
    tmin, tmax = torch.maximum(tmin, near[..., 2]), torch.minimum(tmax, far[..., 2])
    hit = (valid & (tmax > tmin)).unsqueeze(-1)
    start, end = tmin.unsqueeze(-1), tmax.unsqueeze(-1)
    if bool(hit.any()):
        hit_starts = start[hit]
        start = torch.where(hit, start, hit_starts.min())
        end = torch.where(hit, end, hit_starts.max())
    else:
        start, end = torch.zeros_like(start), torch.zeros_like(end)
    return start, end, hit
