"""Cameras and rays with EG3D's conventions (shared docs/eg3d-reference.md sections 2 and 3).

A camera is EG3D's 25-vector: the 4x4 cam2world matrix flattened row-major (OpenCV axes: +x right,
+y down, +z forward; world y up), then the 3x3 intrinsics normalized by the image size, flattened
row-major.
"""

from __future__ import annotations

import math

import torch

from .. import _checks

# FFHQ's data-set labels (fx = fy in units of the image width, centred principal point).
FFHQ_FOCAL = 4.2647
FFHQ_RADIUS = 2.7
FFHQ_PIVOT = (0.0, 0.0, 0.2)


def ffhq_intrinsics(device=None, dtype=torch.float32) -> torch.Tensor:
    """(3, 3) normalized intrinsics of the FFHQ data-set labels: fx = fy = 4.2647, cx = cy = 0.5."""
    return torch.tensor([[FFHQ_FOCAL, 0.0, 0.5], [0.0, FFHQ_FOCAL, 0.5], [0.0, 0.0, 1.0]],
                        device=device, dtype=dtype)


def fov_intrinsics(fov_degrees: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(3, 3) intrinsics of EG3D's ``FOV_to_intrinsics`` (with its truncated constants 3.14159 and
    1.414, so 18.837 degrees gives f = 4.2634, not the label value 4.2647)."""
    focal = float(1 / (math.tan(fov_degrees * 3.14159 / 360) * 1.414))
    return torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]],
                        device=device, dtype=dtype)


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / torch.norm(v, dim=-1, keepdim=True)  # EG3D's math_utils.normalize_vecs (no eps)


def look_at_camera(h, v, radius: float = FFHQ_RADIUS, lookat=FFHQ_PIVOT, intrinsics=None,
                   device=None) -> torch.Tensor:
    """EG3D's ``LookAtPoseSampler.sample`` (without its random spread) as 25-vectors.

    Args:
        h: horizontal angle in radians (EG3D's ``horizontal_mean``; pi/2 is frontal, larger values
            move the camera towards +x): a float or a (B,) tensor.
        v: EG3D's vertical parameter (pi/2 is level, smaller values move the camera up); not an
            angle: the polar angle is arccos(1 - 2 v / pi). Float or (B,) tensor; clamped to
            [1e-5, pi - 1e-5] as EG3D does.
        radius: distance of the camera from the **world origin** (not from ``lookat``).
        lookat: point the camera looks at (3 floats or a (3,) tensor); FFHQ uses (0, 0, 0.2).
        intrinsics: (3, 3) or (B, 3, 3) normalized intrinsics; default ``ffhq_intrinsics()``.

    Returns:
        c (B, 25) float32: flattened cam2world (columns right, down, forward, position) then the
        flattened intrinsics.
    """
    h = torch.as_tensor(h, dtype=torch.float32, device=device).reshape(-1, 1)
    v = torch.as_tensor(v, dtype=torch.float32, device=device).reshape(-1, 1)
    if h.shape[0] != v.shape[0] and h.shape[0] != 1 and v.shape[0] != 1:
        raise ValueError(f"h and v must have the same length (or one of them 1), got "
                         f"{h.shape[0]} and {v.shape[0]}")
    h, v = torch.broadcast_tensors(h, v)
    device = h.device
    v = torch.clamp(v, 1e-5, math.pi - 1e-5) / math.pi
    theta, phi = h, torch.arccos(1 - 2 * v)
    origins = torch.cat([radius * torch.sin(phi) * torch.cos(math.pi - theta),
                         radius * torch.cos(phi),
                         radius * torch.sin(phi) * torch.sin(math.pi - theta)], dim=-1)
    lookat = torch.as_tensor(lookat, dtype=torch.float32, device=device).reshape(1, 3)
    forward = _normalize(_normalize(lookat - origins))  # EG3D normalizes twice
    up = torch.tensor([0.0, 1.0, 0.0], device=device).expand_as(forward)
    right = -_normalize(torch.cross(up, forward, dim=-1))
    up = _normalize(torch.cross(forward, right, dim=-1))
    B = origins.shape[0]
    rotation = torch.eye(4, device=device).repeat(B, 1, 1)
    rotation[:, :3, :3] = torch.stack((right, up, forward), dim=-1)
    translation = torch.eye(4, device=device).repeat(B, 1, 1)
    translation[:, :3, 3] = origins
    cam2world = (translation[:, :, :, None] * rotation[:, None, :, :]).sum(2)  # float32 under autocast
    if intrinsics is None:
        intrinsics = ffhq_intrinsics(device)
    intrinsics = torch.as_tensor(intrinsics, dtype=torch.float32, device=device)
    _checks.check_tensor(intrinsics, "intrinsics", "(3, 3) or (B, 3, 3)", sizes={-1: 3, -2: 3})
    intrinsics = intrinsics.reshape(-1, 9).expand(B, 9)
    return torch.cat([cam2world.reshape(B, 16), intrinsics], dim=1)


def _check_cameras(c: torch.Tensor) -> None:
    _checks.check_tensor(c, "c", "(N, 25)", dim=2, sizes={1: 25})
    _checks.check_float(c, "c")


def camera_angles(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Yaw and elevation of the camera positions in degrees (the project's reporting convention).

    c (N, 25) -> yaw (N,) = atan2(x, z), elevation (N,) = atan2(y, hypot(x, z)). A frontal FFHQ
    camera at (0, 0, 2.7) has yaw 0 and elevation 0; EG3D's ``v`` is not this elevation.
    """
    _check_cameras(c)
    x, y, z = c[:, 3], c[:, 7], c[:, 11]
    return torch.rad2deg(torch.atan2(x, z)), torch.rad2deg(torch.atan2(y, torch.hypot(x, z)))


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
    _check_cameras(c)
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
