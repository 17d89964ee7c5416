"""Cameras with EG3D's conventions: the 25-vector label, look-at cameras by angle, and the named
camera geometries of EG3D's data sets. The one camera module of the project.

A camera is EG3D's 25-vector: the 4x4 cam2world matrix flattened row-major (OpenCV axes: +x right,
+y down, +z forward; world y up), then the 3x3 intrinsics normalized by the image size, flattened
row-major.

Two parametrisations of a look-at camera on a sphere around the world origin, looking at a pivot:

* the project's angles (``camera_from_angles`` / ``camera_angles``), in degrees, of the camera
  **position**: yaw = atan2(x, z) (positive moves the camera toward +x) and elevation =
  atan2(y, hypot(x, z)) (positive moves it up). A frontal FFHQ camera at (0, 0, 2.7) is (0, 0).
* EG3D's ``LookAtPoseSampler`` parameters (``look_at_camera(h, v)``), in radians: h = pi/2 + yaw,
  but v is **not** an angle: the polar angle is phi = arccos(1 - 2 v / pi), so elevation =
  90 deg - phi. v = pi/2 is level; v = pi/2 + 8 deg is an elevation of -5.1 deg, not -8.
  ``eg3d_to_angles`` / ``angles_to_eg3d`` convert.

Both go through the same math (``_look_at``), so a camera given either way is the same label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .. import _checks


@dataclass(frozen=True)
class Geometry:
    """Where a data set's cameras are: a sphere of ``radius`` around the world origin, looking at
    ``pivot``, normalized focal ``focal`` (fx = fy, centred principal point), and the camera
    distributions built on it:

    * NeRFInvertor's neighbour cameras (``neighbour_cameras``), in EG3D's parameters:
      h ~ N(pi/2, yaw_std), v ~ N(pi/2, pitch_std), each clamped to pi/2 +- clamp; with
      ``full_azimuth`` h is uniform over the whole circle (360 degrees of azimuth, cars);
    * the turntable (``turntable_cameras``): yaw swings +- turntable_yaw degrees around the input
      view (the whole circle with ``full_azimuth``) at the input's elevation.
    """

    name: str
    radius: float
    pivot: tuple[float, float, float]
    focal: float
    yaw_std: float = 0.3
    pitch_std: float = 0.155
    clamp: float = 1.3
    full_azimuth: bool = False
    turntable_yaw: float = 35.0  # degrees

    def intrinsics(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """(3, 3) normalized intrinsics: fx = fy = focal, cx = cy = 0.5."""
        return torch.tensor([[self.focal, 0.0, 0.5], [0.0, self.focal, 0.5], [0.0, 0.0, 1.0]],
                            device=device, dtype=dtype)


# EG3D's data sets (its training configs; the focal of its data-set labels and gen_videos.py).
FFHQ = Geometry("ffhq", radius=2.7, pivot=(0.0, 0.0, 0.2), focal=4.2647)
AFHQ = Geometry("afhq", radius=2.7, pivot=(0.0, 0.0, -0.06), focal=4.2647)
SHAPENET_CARS = Geometry("shapenet_cars", radius=1.7, pivot=(0.0, 0.0, 0.0), focal=1.7074,
                         full_azimuth=True, turntable_yaw=180.0)
GEOMETRIES = {g.name: g for g in (FFHQ, AFHQ, SHAPENET_CARS)}


def geometry_for(name: str | None = None, rendering_kwargs: dict | None = None) -> Geometry:
    """The named geometry (``GEOMETRIES``) with the radius and pivot of a generator's
    ``rendering_kwargs`` (``avg_camera_radius``, ``avg_camera_pivot``) where it has them. Without a
    name: the preset whose radius and pivot those are (an EG3D AFHQ checkpoint is AFHQ), FFHQ's
    distributions otherwise. ValueError for an unknown name."""
    if name is not None and name not in GEOMETRIES:
        raise ValueError(f"camera geometry must be one of {sorted(GEOMETRIES)}, got {name!r}")
    kw = rendering_kwargs or {}
    radius = kw.get("avg_camera_radius")
    pivot = kw.get("avg_camera_pivot")
    if pivot is not None:
        pivot = tuple(float(x) for x in pivot)
        if len(pivot) != 3:
            raise ValueError(f"avg_camera_pivot must have 3 coordinates, got {pivot}")
    if name is None:
        matching = [g for g in GEOMETRIES.values()
                    if (radius is None or float(radius) == g.radius) and (pivot is None or pivot == g.pivot)]
        name = matching[0].name if matching else "ffhq"
    base = GEOMETRIES[name]
    radius = base.radius if radius is None else float(radius)
    pivot = base.pivot if pivot is None else pivot
    if (radius, pivot) == (base.radius, base.pivot):
        return base
    return replace(base, radius=radius, pivot=pivot)


def ffhq_intrinsics(device=None, dtype=torch.float32) -> torch.Tensor:
    """(3, 3) normalized intrinsics of the FFHQ data-set labels: fx = fy = 4.2647, cx = cy = 0.5."""
    return FFHQ.intrinsics(device, dtype)


def fov_intrinsics(fov_degrees: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(3, 3) intrinsics of EG3D's ``FOV_to_intrinsics`` (with its truncated constants 3.14159 and
    1.414, so 18.837 degrees gives f = 4.2634, not the label value 4.2647)."""
    focal = float(1 / (math.tan(fov_degrees * 3.14159 / 360) * 1.414))
    return torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]],
                        device=device, dtype=dtype)


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / torch.norm(v, dim=-1, keepdim=True)  # EG3D's math_utils.normalize_vecs (no eps)


def _look_at(theta: torch.Tensor, phi: torch.Tensor, radius: float, lookat, intrinsics,
             device) -> torch.Tensor:
    """(B, 25) look-at labels at azimuth theta (EG3D's h) and polar angle phi, both (B, 1)."""
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


def _pair(a, b, names: tuple[str, str], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Two floats or (B,) tensors as broadcast (B, 1) float32 columns."""
    a = torch.as_tensor(a, dtype=torch.float32, device=device).reshape(-1, 1)
    b = torch.as_tensor(b, dtype=torch.float32, device=device).reshape(-1, 1)
    if a.shape[0] != b.shape[0] and a.shape[0] != 1 and b.shape[0] != 1:
        raise ValueError(f"{names[0]} and {names[1]} must have the same length (or one of them "
                         f"1), got {a.shape[0]} and {b.shape[0]}")
    return torch.broadcast_tensors(a, b)


def look_at_camera(h, v, radius: float = FFHQ.radius, lookat=FFHQ.pivot, intrinsics=None,
                   device=None) -> torch.Tensor:
    """EG3D's ``LookAtPoseSampler.sample`` (without its random spread) as 25-vectors, in EG3D's
    own parameters (kept for compatibility; ``camera_from_angles`` takes true angles).

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
    h, v = _pair(h, v, ("h", "v"), device)
    v = torch.clamp(v, 1e-5, math.pi - 1e-5) / math.pi
    return _look_at(h, torch.arccos(1 - 2 * v), radius, lookat, intrinsics, h.device)


def camera_from_angles(yaw_deg, elevation_deg, *, radius: float = FFHQ.radius,
                       pivot=FFHQ.pivot, focal: float = FFHQ.focal, device=None) -> torch.Tensor:
    """(B, 25) look-at labels of cameras at ``yaw_deg`` / ``elevation_deg`` (degrees of the camera
    position, see the module docstring; floats or (B,) tensors) on the sphere of ``radius``
    around the world origin, looking at ``pivot``, with normalized focal ``focal``. Defaults:
    FFHQ's geometry. The inverse of ``camera_angles``."""
    yaw, elevation = _pair(yaw_deg, elevation_deg, ("yaw_deg", "elevation_deg"), device)
    intrinsics = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]],
                              device=yaw.device)
    return _look_at(math.pi / 2 + torch.deg2rad(yaw), math.pi / 2 - torch.deg2rad(elevation),
                    radius, pivot, intrinsics, yaw.device)


def check_cameras(c: torch.Tensor, name: str = "c") -> None:
    """ValueError unless c is a floating (N, 25) tensor."""
    _checks.check_tensor(c, name, "(N, 25)", dim=2, sizes={1: 25})
    _checks.check_float(c, name)


def camera_angles(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Yaw and elevation of the camera positions in degrees (the project's angles).

    c (N, 25) -> yaw (N,) = atan2(x, z), elevation (N,) = atan2(y, hypot(x, z)). A frontal FFHQ
    camera at (0, 0, 2.7) has yaw 0 and elevation 0; EG3D's ``v`` is not this elevation.
    """
    check_cameras(c)
    x, y, z = c[:, 3], c[:, 7], c[:, 11]
    return torch.rad2deg(torch.atan2(x, z)), torch.rad2deg(torch.atan2(y, torch.hypot(x, z)))


def eg3d_to_angles(h, v) -> tuple[torch.Tensor, torch.Tensor]:
    """EG3D's (h, v) (radians, ``look_at_camera``) -> (yaw_deg, elevation_deg) of the camera."""
    h, v = (torch.as_tensor(x, dtype=torch.float64) for x in (h, v))
    v = torch.clamp(v, 1e-5, math.pi - 1e-5) / math.pi
    return torch.rad2deg(h - math.pi / 2), 90.0 - torch.rad2deg(torch.arccos(1 - 2 * v))


def angles_to_eg3d(yaw_deg, elevation_deg) -> tuple[torch.Tensor, torch.Tensor]:
    """(yaw_deg, elevation_deg) -> EG3D's (h, v) in radians (the inverse of ``eg3d_to_angles``)."""
    yaw, elevation = (torch.as_tensor(x, dtype=torch.float64) for x in (yaw_deg, elevation_deg))
    phi = math.pi / 2 - torch.deg2rad(elevation)
    return math.pi / 2 + torch.deg2rad(yaw), math.pi * (1 - torch.cos(phi)) / 2


def neighbour_cameras(n: int, geometry: Geometry = FFHQ, *, generator=None, intrinsics=None,
                      device=None) -> torch.Tensor:
    """(n, 25) NeRFInvertor's random neighbour cameras on ``geometry``: EG3D's h ~ N(pi/2,
    yaw_std) (uniform over the circle with ``full_azimuth``), v ~ N(pi/2, pitch_std), each
    clamped to pi/2 +- clamp; intrinsics default to the geometry's."""
    g = geometry
    if g.full_azimuth:
        h = 2 * math.pi * torch.rand(n, generator=generator)
    else:
        h = (math.pi / 2 + g.yaw_std * torch.randn(n, generator=generator)).clamp(
            math.pi / 2 - g.clamp, math.pi / 2 + g.clamp)
    v = (math.pi / 2 + g.pitch_std * torch.randn(n, generator=generator)).clamp(
        math.pi / 2 - g.clamp, math.pi / 2 + g.clamp)
    if intrinsics is None:
        intrinsics = g.intrinsics()
    return look_at_camera(h, v, radius=g.radius, lookat=g.pivot, intrinsics=intrinsics).to(device)


def turntable_cameras(camera: torch.Tensor, frames: int, geometry: Geometry = FFHQ) -> torch.Tensor:
    """(frames, 25) the turntable around one camera (25,) or (1, 25): yaw = its yaw +
    turntable_yaw x sin(2 pi i / frames) (with ``full_azimuth``: + 360 i / frames), at its
    elevation and distance from the origin, looking at the geometry's pivot, with its
    intrinsics. Frame 0 is the input view."""
    if not isinstance(camera, torch.Tensor) or camera.numel() != 25:
        raise ValueError(f"camera must be one (25,) or (1, 25) label, got "
                         f"{tuple(camera.shape) if isinstance(camera, torch.Tensor) else type(camera).__name__}")
    c = camera.reshape(1, 25)
    check_cameras(c, "camera")
    yaw, elevation = (float(a) for a in camera_angles(c))
    i = torch.arange(frames, dtype=torch.float64)
    if geometry.full_azimuth:
        yaws = yaw + 360.0 * i / frames
    else:
        yaws = yaw + geometry.turntable_yaw * torch.sin(2 * math.pi * i / frames)
    h, v = angles_to_eg3d(yaws, torch.full_like(yaws, elevation))
    radius = float(c[0, [3, 7, 11]].norm())
    return look_at_camera(h.float(), v.float(), radius=radius, lookat=geometry.pivot,
                          intrinsics=c[0, 16:].view(3, 3), device=c.device)
