"""The alignment convention: how a generator's training crops and camera labels relate to a head.

This is the one place where the crop and the label are defined, so that they agree.

Camera (EG3D's FFHQ labels): a look-at camera on the sphere of radius ``radius`` (2.7) around the
world origin, looking at ``pivot`` (0, 0, 0.2), with no roll, normalized focal ``focal`` (4.2647)
and a centred principal point. Its viewing direction is the fitted head pose's.

Head in the world: the canonical face mesh (centimetres, see pose.py) sits in the world as

    world = world_per_cm * mesh_rotation @ mesh + mesh_origin

For FFHQ this follows EG3D's preprocessing: its world is Deep3DFaceRecon's face-model frame scaled
by 0.27 per model unit (a decimetre), i.e. 0.027 world units per cm, and the face model's origin
(the centroid of its re-centred face mesh, which we identify with the canonical mesh's vertex
centroid) lands at (0, 0.006, 0.161); the mesh axes are the world axes. Generators trained on
other data carry their own values in their metadata (``alignment`` in the JSON config): the
embedded default model's were measured on its procedural heads (inversion.align.calibrate).

Detector bias: on faces unlike the detector's training photos (the default generator's cartoon
heads) the landmarks carry a pose bias that no rigid fit removes (there: elevation read ~6 degrees
high on frontal views and ~4 low at 45 degrees of yaw). A convention may carry that bias, measured
on renders with known cameras, as polynomial coefficients in u = yaw / 45 and v = elevation / 15 of
the measured angles (degrees); ``camera`` subtracts it:

    yaw bias       = yaw_bias[0] * u + yaw_bias[1] * u^3                       (odd in yaw)
    elevation bias = elevation_bias . (1, u^2, v, u^2 v)                       (even in yaw)

FFHQ's is empty (no correction: MediaPipe's own pose on real faces is what we have).

Crop: the square that this camera would see. Its centre is where the pivot projects; its side is
the photo length that spans the image width at the face's depth, so one centimetre of face covers
``focal * world_per_cm / depth`` image widths, as in the generator's renders. Roll is removed by
rotating the photo about the crop centre by the roll of the fitted pose (for a frontal face, the
angle that levels the eyes, as FFHQ's alignment does). With EG3D's FFHQ values this reproduces its
re-crop (300 px per model unit in the 700 px centre crop = 0.43 image widths per decimetre).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from nerfgan_kernels.render.cameras import FFHQ, camera_from_angles as _camera_from_angles

from .pose import Pose, canonical_mesh

_WORLD_UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Convention:
    """Camera model + where the canonical face mesh sits in the generator's world (see module)."""
    focal: float = FFHQ.focal
    radius: float = FFHQ.radius
    pivot: tuple = FFHQ.pivot
    world_per_cm: float = 0.027
    mesh_origin: tuple = (0.0, 0.024264, 0.048707)   # centroid (0, -0.676, 4.159) cm -> (0, .006, .161)
    mesh_rotation: tuple = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    yaw_bias: tuple = ()          # () or 2 coefficients (see the module docstring)
    elevation_bias: tuple = ()    # () or 4 coefficients
    name: str = field(default="ffhq", compare=False)

    def __post_init__(self):
        for key, n in (("yaw_bias", 2), ("elevation_bias", 4)):
            value = getattr(self, key)
            if len(value) not in (0, n):
                raise ValueError(f"alignment convention: {key} must have 0 or {n} coefficients, got {len(value)}")

    @classmethod
    def from_dict(cls, d: dict | None) -> Convention:
        if d is None:
            return cls()
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"alignment convention: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        d = {k: tuple(map(tuple, v)) if k == "mesh_rotation" else tuple(v) if isinstance(v, list) else v
             for k, v in d.items()}
        return cls(**d)

    @classmethod
    def for_generator(cls, G) -> Convention:
        """The generator's own convention (``G.metadata.alignment``, from its config) or FFHQ's."""
        return cls.from_dict(G.metadata.alignment)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("pivot", "mesh_origin", "yaw_bias", "elevation_bias"):
            d[key] = list(d[key])
        d["mesh_rotation"] = [list(r) for r in self.mesh_rotation]
        return d

    # ---- geometry --------------------------------------------------------------------------------

    def mesh_to_world(self, points: np.ndarray) -> np.ndarray:
        """Mesh points (N, 3) cm -> world (N, 3)."""
        Rm = np.asarray(self.mesh_rotation)
        return self.world_per_cm * np.asarray(points) @ Rm.T + np.asarray(self.mesh_origin)

    def world_to_mesh(self, points: np.ndarray) -> np.ndarray:
        Rm = np.asarray(self.mesh_rotation)
        return (np.asarray(points) - np.asarray(self.mesh_origin)) @ Rm / self.world_per_cm

    def camera_rotation(self, pose: Pose) -> np.ndarray:
        """(3, 3) world -> camera rotation of the pose (rows: camera right, down, forward in world)."""
        return pose.rotation @ np.asarray(self.mesh_rotation).T

    def camera(self, pose: Pose) -> dict:
        """The EG3D label of the pose: {'label' (25,) float32 tensor, 'yaw', 'elevation', 'roll'
        (degrees; yaw and elevation with the convention's detector bias removed, roll is what the
        crop removes), 'position' (3,) of the labelled camera, 'distance' (camera to the face's
        centroid along the fitted view, world units)}."""
        R = self.camera_rotation(pose)
        forward = R[2] / np.linalg.norm(R[2])
        pivot = np.asarray(self.pivot, dtype=np.float64)
        pf = pivot @ forward
        disc = pf ** 2 - pivot @ pivot + self.radius ** 2
        if disc < 0:
            raise ValueError("the pivot lies outside the camera sphere")
        position = pivot - (pf + math.sqrt(disc)) * forward
        right0 = -np.cross(_WORLD_UP, forward)
        right0 /= np.linalg.norm(right0)
        down0 = np.cross(forward, right0)
        roll = math.degrees(math.atan2(R[0] @ down0, R[0] @ right0))
        yaw = math.degrees(math.atan2(position[0], position[2]))
        elevation = math.degrees(math.atan2(position[1], math.hypot(position[0], position[2])))
        yaw, elevation = self.remove_bias(yaw, elevation)
        label = camera_from_angles(yaw, elevation, self)
        centroid = self.mesh_to_world(canonical_mesh()[0].mean(0, keepdims=True))[0]
        distance = float((centroid - position) @ forward)
        return {"label": label, "yaw": yaw, "elevation": elevation, "roll": roll,
                "position": label[:16].reshape(4, 4)[:3, 3].double().numpy(), "distance": distance}

    def angle_bias(self, yaw: float, elevation: float) -> tuple[float, float]:
        """The detector's (yaw, elevation) bias in degrees at measured angles (module docstring)."""
        yaw_terms, elevation_terms = bias_terms(yaw, elevation)
        dy = float(yaw_terms @ np.asarray(self.yaw_bias)) if self.yaw_bias else 0.0
        de = float(elevation_terms @ np.asarray(self.elevation_bias)) if self.elevation_bias else 0.0
        return dy, de

    def without_bias(self) -> Convention:
        """The same convention with no detector-bias correction (what the detector itself reads)."""
        return replace(self, yaw_bias=(), elevation_bias=())

    def remove_bias(self, yaw: float, elevation: float) -> tuple[float, float]:
        dy, de = self.angle_bias(yaw, elevation)
        return yaw - dy, elevation - de

    def crop_box(self, pose: Pose) -> dict:
        """The crop of the pose in photo pixels: {'center' (2,), 'side' (pixels), 'roll' (degrees),
        'corners' (4, 2) (top-left, top-right, bottom-right, bottom-left of the output image)}."""
        cam = self.camera(pose)
        center = pose.project(self.world_to_mesh(np.asarray(self.pivot)[None]))[0]
        side = pose.scale * cam["distance"] / (self.focal * self.world_per_cm)
        return {"center": center, "side": float(side), "roll": cam["roll"],
                "corners": crop_corners(center, side, cam["roll"])}


def bias_terms(yaw, elevation) -> tuple[np.ndarray, np.ndarray]:
    """Terms of the detector-bias polynomials at measured angles (degrees; scalars or (N,)):
    yaw terms (..., 2) = (u, u^3) and elevation terms (..., 4) = (1, u^2, v, u^2 v), u = yaw / 45,
    v = elevation / 15."""
    u, v = np.asarray(yaw, dtype=np.float64) / 45.0, np.asarray(elevation, dtype=np.float64) / 15.0
    return np.stack([u, u ** 3], -1), np.stack([np.ones_like(u), u * u, v, u * u * v], -1)


def crop_axes(roll_degrees: float) -> np.ndarray:
    """(2, 2) columns: the photo directions of the crop's +x (right) and +y (down) axes."""
    r = math.radians(roll_degrees)
    c, s = math.cos(r), math.sin(r)
    return np.array([[c, s], [-s, c]])


def crop_corners(center, side: float, roll_degrees: float) -> np.ndarray:
    """(4, 2) photo pixels of the crop's corners: top-left, top-right, bottom-right, bottom-left."""
    A = crop_axes(roll_degrees)
    offsets = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * side
    return np.asarray(center, dtype=np.float64) + offsets @ A.T


def camera_from_angles(yaw: float, elevation: float, convention: Convention | None = None) -> torch.Tensor:
    """(25,) EG3D look-at label of the camera at ``yaw``, ``elevation`` (degrees of the camera
    position, ``cameras.camera_from_angles``) on the convention's sphere, looking at its pivot."""
    conv = convention or Convention()
    return _camera_from_angles(yaw, elevation, radius=conv.radius, pivot=conv.pivot,
                               focal=conv.focal)[0]
