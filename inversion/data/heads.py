"""A seeded procedural family of stylised 3D heads with exact ground truth.

Each head is an analytic signed-distance shape (cranium, face, jaw, nose, ears, eyes, eyebrows,
hair, neck, a mouth whose opening and smile follow ``expression``; optionally glasses and a hat,
which lie outside the training family) coloured by a position-dependent albedo, so every view of a
head is consistent. ``render_head`` sphere-traces it from any EG3D camera (25-vector) and returns
RGB, depth and a foreground mask with EG3D's conventions (docs/eg3d.md sections
2-3): world y up, the face looks toward +z (the frontal camera ``look_at_camera(pi/2, pi/2)`` sits
at (0, 0, 2.7) looking at (0, 0, 0.2)), and every head lies inside the generator's box
[-0.5, 0.5]^3 (box_warp 1).

Distances are in world units (the box side is 1). All SDFs here are lower bounds of the true
distance (1-Lipschitz), which is what sphere tracing needs; the hit is refined by bisection on the
sign change, so the depth lies on the zero set to ~1e-6 whatever the bound's looseness.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass

import torch

from nerfgan_kernels.render import camera_rays, ray_box_intersect
from nerfgan_kernels.render.cameras import FFHQ, camera_from_angles

# Default background depth: EG3D FFHQ's ray_end (every head point is nearer than this from any
# camera on the radius-2.7 sphere, since the head lies inside the box of half-side 0.5).
BACKGROUND_DEPTH = 3.3

# Material ids (the order of the palette rows built per head in ``_albedo``).
SKIN, HAIR, EYE, LIPS, MOUTH, BROW, GLASSES, HAT, EAR = range(9)

_SKIN_TONES = [(0.96, 0.80, 0.69), (0.91, 0.72, 0.58), (0.80, 0.60, 0.45), (0.66, 0.47, 0.33),
               (0.50, 0.34, 0.23), (0.36, 0.24, 0.16)]
_HAIR_COLOURS = [(0.10, 0.08, 0.07), (0.30, 0.19, 0.11), (0.55, 0.36, 0.18), (0.80, 0.66, 0.45),
                 (0.62, 0.25, 0.12), (0.55, 0.55, 0.55)]
_IRIS_COLOURS = [(0.25, 0.15, 0.08), (0.20, 0.35, 0.60), (0.25, 0.45, 0.25), (0.40, 0.30, 0.15)]
_LIGHT_DIR = (-0.35, 0.55, 0.76)  # world direction toward the light (front, upper left of image)
_AMBIENT = 0.35
NECK_BOTTOM = 0.46  # the neck is cut at y = -0.46
HEAD_OFFSET = (0.0, -0.03, 0.0)  # world position of the head frame's origin


@dataclass(frozen=True)
class HeadParams:
    """Parameters of one head (all plain floats/tuples, so a head is hashable and printable).

    Lengths are world units; colours are RGB in [0, 1]. ``expression`` in [0, 1] opens the mouth
    and raises its corners (0 = closed and neutral, 1 = open smile).
    """
    seed: int
    scale: float            # overall size
    cranium: tuple          # (rx, ry, rz) of the skull ellipsoid
    face_width: float       # x radius of the face ellipsoid
    jaw_width: float        # x radius of the jaw
    chin_drop: float        # how far the jaw reaches down
    nose_length: float
    nose_width: float
    eye_spacing: float      # half distance between the eye centres
    eye_radius: float
    ear_size: float
    mouth_width: float
    expression: float
    skin: tuple
    lips: tuple
    hair: tuple
    iris: tuple
    hair_volume: float      # thickness of the hair shell
    hairline: float         # height of the hairline on the forehead
    long_hair: bool
    texture_freq: tuple     # three spatial frequencies of the skin texture
    texture_phase: tuple
    texture_amp: float
    glasses: bool = False
    hat: bool = False
    hat_colour: tuple = (0.2, 0.25, 0.5)

    def replace(self, **changes) -> "HeadParams":
        """A copy with some fields changed (e.g. ``expression``)."""
        return dataclasses.replace(self, **changes)


def _mix(a, b, t):
    return tuple(x + (y - x) * t for x, y in zip(a, b))


def sample_head(seed: int, expression: float | None = None, accessories: bool = False) -> HeadParams:
    """The head of ``seed`` (same seed, same head, on every machine: Python's ``random.Random``).

    Args:
        seed: non-negative int identifying the head (its identity, colours, texture).
        expression: mouth opening/smile in [0, 1]; None draws it from the seed. The identity does
            not depend on it (the draw happens either way), so ``sample_head(s, e)`` for several
            ``e`` is one person with several expressions.
        accessories: if True, the seed also decides glasses and/or a hat (at least one of them):
            out-of-distribution targets; the training family has none.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if expression is not None and not (isinstance(expression, (int, float))
                                       and 0.0 <= float(expression) <= 1.0):
        raise ValueError(f"expression must be None or a number in [0, 1], got {expression!r}")
    r = random.Random(seed * 7919 + 12345)
    u = r.uniform
    skin_i = u(0, len(_SKIN_TONES) - 1)
    lo = int(skin_i)
    skin = _mix(_SKIN_TONES[lo], _SKIN_TONES[min(lo + 1, len(_SKIN_TONES) - 1)], skin_i - lo)
    hair = _HAIR_COLOURS[r.randrange(len(_HAIR_COLOURS))]
    shade = u(0.85, 1.15)
    hair = tuple(min(1.0, max(0.0, c * shade)) for c in hair)
    iris = _IRIS_COLOURS[r.randrange(len(_IRIS_COLOURS))]
    lips = _mix(skin, (0.75, 0.30, 0.32), u(0.35, 0.6))
    params = dict(
        seed=seed, scale=u(1.0, 1.12),
        cranium=(u(0.165, 0.185), u(0.205, 0.225), u(0.205, 0.23)),
        face_width=u(0.135, 0.155), jaw_width=u(0.095, 0.125), chin_drop=u(0.0, 0.025),
        nose_length=u(0.05, 0.08), nose_width=u(0.018, 0.028),
        eye_spacing=u(0.055, 0.068), eye_radius=u(0.026, 0.031), ear_size=u(0.05, 0.065),
        mouth_width=u(0.045, 0.06), expression=u(0.0, 1.0),
        skin=skin, lips=lips, hair=hair, iris=iris,
        hair_volume=u(0.012, 0.035), hairline=u(0.03, 0.07), long_hair=r.random() < 0.35,
        texture_freq=(u(18, 30), u(18, 30), u(18, 30)),
        texture_phase=(u(0, 2 * math.pi), u(0, 2 * math.pi), u(0, 2 * math.pi)),
        texture_amp=u(0.03, 0.08),
    )
    # Accessories are drawn from a separate stream so that the identity never depends on them.
    ra = random.Random(seed * 104729 + 777)
    kind = ra.randrange(3)
    hat_colour = (ra.uniform(0.1, 0.8), ra.uniform(0.1, 0.5), ra.uniform(0.1, 0.8))
    if accessories:
        params.update(glasses=kind in (0, 2), hat=kind in (1, 2), hat_colour=hat_colour)
    if expression is not None:
        params["expression"] = float(expression)
    return HeadParams(**params)


# ---- SDF primitives (p: (..., 3) tensors; all return (...) lower bounds of the distance) -----------

def _ellipsoid(p, centre, radii):
    """Lower bound of the distance to an axis-aligned ellipsoid: (|q/r| - 1) * min(r)."""
    q = (p - p.new_tensor(centre)) / p.new_tensor(radii)
    return (q.norm(dim=-1) - 1.0) * min(radii)


def _sphere(p, centre, radius):
    return (p - p.new_tensor(centre)).norm(dim=-1) - radius


def _capsule(p, a, b, radius):
    a, b = p.new_tensor(a), p.new_tensor(b)
    pa, ba = p - a, b - a
    h = ((pa @ ba) / (ba @ ba)).clamp(0, 1)
    return (pa - h[..., None] * ba).norm(dim=-1) - radius


def _torus_z(p, centre, major, minor):
    """Torus in the plane z = centre.z (a spectacle rim)."""
    q = p - p.new_tensor(centre)
    ring = torch.stack([q[..., :2].norm(dim=-1) - major, q[..., 2]], dim=-1)
    return ring.norm(dim=-1) - minor


def _cylinder_y(p, centre, radius, half_height):
    q = p - p.new_tensor(centre)
    d = torch.stack([q[..., [0, 2]].norm(dim=-1) - radius, q[..., 1].abs() - half_height], dim=-1)
    return d.clamp(min=0).norm(dim=-1) + d.max(dim=-1).values.clamp(max=0)


def _smin(a, b, k):
    """Polynomial smooth minimum (stays a lower bound of min(a, b) minus at most k/4)."""
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b + (a - b) * h - k * h * (1 - h)


class HeadScene:
    """The SDF and albedo of one head. ``sdf(p)`` (..., 3) -> (...); ``albedo(p)`` -> (..., 3)."""

    def __init__(self, params: HeadParams):
        self.params = params

    def _parts(self, p):
        """Signed distances of the parts, in the head's unscaled frame. Returns a dict of (...)."""
        P = self.params
        rx, ry, rz = P.cranium
        e = P.expression
        d = {}
        cranium = _ellipsoid(p, (0.0, 0.05, -0.03), (rx, ry, rz))
        face = _ellipsoid(p, (0.0, -0.02, 0.04), (P.face_width, 0.17, 0.15))
        jaw = _ellipsoid(p, (0.0, -0.10 - P.chin_drop, 0.06), (P.jaw_width, 0.10, 0.12))
        cheeks = _ellipsoid(p, (0.0, -0.03, 0.09), (P.face_width * 0.95, 0.07, 0.10))
        skull = _smin(_smin(cranium, face, 0.04), _smin(jaw, cheeks, 0.03), 0.04)
        neck = _cylinder_y(p, (0.0, -0.34, -0.03), 0.085, 0.16)
        skull = _smin(skull, neck, 0.05)
        # Nose: a capsule from the bridge to the tip, plus a small ball for the tip.
        tip = (0.0, -0.035 - 0.2 * P.nose_length, 0.19 + P.nose_length * 0.75)
        nose = _smin(_capsule(p, (0.0, 0.03, 0.16), tip, P.nose_width * 0.6),
                     _sphere(p, (tip[0], tip[1] - 0.004, tip[2] - 0.012), P.nose_width), 0.015)
        # Ears: flattened ellipsoids on the sides.
        ear_l = _ellipsoid(p, (-rx - 0.004, 0.0, -0.01), (0.016, P.ear_size, P.ear_size * 0.6))
        ear_r = _ellipsoid(p, (rx + 0.004, 0.0, -0.01), (0.016, P.ear_size, P.ear_size * 0.6))
        ears = torch.minimum(ear_l, ear_r)
        # Eyes: balls embedded in the face.
        eye_y, eye_z = 0.03, 0.158
        eye_l = _sphere(p, (-P.eye_spacing, eye_y, eye_z), P.eye_radius)
        eye_r = _sphere(p, (P.eye_spacing, eye_y, eye_z), P.eye_radius)
        d["eye"] = torch.minimum(eye_l, eye_r)
        # Eyebrows: short capsules above the eyes, standing slightly proud of the forehead.
        by = eye_y + P.eye_radius + 0.025
        brow_l = _capsule(p, (-P.eye_spacing - 0.028, by - 0.004, 0.165),
                          (-P.eye_spacing + 0.022, by + 0.004, 0.177), 0.008)
        brow_r = _capsule(p, (P.eye_spacing + 0.028, by - 0.004, 0.165),
                          (P.eye_spacing - 0.022, by + 0.004, 0.177), 0.008)
        d["brow"] = torch.minimum(brow_l, brow_r)
        # Mouth: a cavity (ellipsoid carved out of the face) that opens with the expression, in a
        # frame bent upward at the corners for the smile; lips are a ring of skin around it.
        mouth_c = (0.0, -0.115 - P.chin_drop * 0.5, 0.175)
        bend = 6.0 * e  # y' = y - bend * x^2: |grad| <= sqrt(1 + (2 bend x)^2) <= 1.25 here
        q = p - p.new_tensor(mouth_c)
        qb = torch.stack([q[..., 0], q[..., 1] - bend * q[..., 0] ** 2, q[..., 2]], dim=-1)
        mouth = _ellipsoid(qb, (0.0, 0.0, 0.0), (P.mouth_width, 0.004 + 0.022 * e, 0.06)) / 1.25
        lips = _ellipsoid(qb, (0.0, 0.0, 0.0), (P.mouth_width + 0.012, 0.014 + 0.022 * e, 0.035)) / 1.25
        head = _smin(skull, nose, 0.02)
        head = torch.minimum(head, ears)
        head = torch.maximum(head, -mouth)
        d["mouth"] = mouth
        d["lips"] = lips
        d["skin"] = head
        d["ear"] = ears
        # Hair: a shell over the skull, cut by a tilted plane (hairline in front, nape at the back).
        hv = P.hair_volume
        hair = _ellipsoid(p, (0.0, 0.06, -0.04), (rx + hv, ry + hv * 0.8, rz + hv))
        # Hair where y >= hairline + 0.7 z: high on the forehead, low at the nape.
        cut = -((p - p.new_tensor((0.0, P.hairline, 0.0))) @ p.new_tensor((0.0, 0.819, -0.573)))
        hair = torch.maximum(hair, cut)
        if P.long_hair:
            back = _ellipsoid(p, (0.0, -0.12, -0.08), (rx + hv * 0.5, 0.20, 0.13))
            back = torch.maximum(back, -(p[..., 2] + 0.02))  # only behind the face
            hair = _smin(hair, back, 0.03)
        d["hair"] = hair
        if P.glasses:
            gz = eye_z + 0.045
            rims = torch.minimum(_torus_z(p, (-P.eye_spacing, eye_y, gz), 0.036, 0.005),
                                 _torus_z(p, (P.eye_spacing, eye_y, gz), 0.036, 0.005))
            bridge = _capsule(p, (-P.eye_spacing + 0.036, eye_y + 0.005, gz),
                              (P.eye_spacing - 0.036, eye_y + 0.005, gz), 0.004)
            arms = torch.minimum(
                _capsule(p, (-P.eye_spacing - 0.036, eye_y, gz), (-rx - 0.01, eye_y + 0.01, -0.01), 0.004),
                _capsule(p, (P.eye_spacing + 0.036, eye_y, gz), (rx + 0.01, eye_y + 0.01, -0.01), 0.004))
            d["glasses"] = torch.minimum(torch.minimum(rims, bridge), arms)
        if P.hat:
            crown = _cylinder_y(p, (0.0, 0.21, -0.03), rx + 0.03, 0.07)
            brim = _cylinder_y(p, (0.0, 0.145, -0.01), rx + 0.09, 0.008)
            d["hat"] = _smin(crown, brim, 0.01)
        return d

    def _to_local(self, p):
        """World -> the head's frame (the head is modelled 0.03 higher and at scale 1)."""
        return (p - p.new_tensor(HEAD_OFFSET)) / self.params.scale

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        """Signed distance lower bound at world points p (..., 3) -> (...); negative inside."""
        d = self._parts(self._to_local(p))
        out = torch.minimum(torch.minimum(d["skin"], d["hair"]), torch.minimum(d["eye"], d["brow"]))
        for extra in ("glasses", "hat"):
            if extra in d:
                out = torch.minimum(out, d[extra])
        # Clip the neck (world units) so the head stays inside the box [-0.5, 0.5]^3.
        return torch.maximum(out * self.params.scale, -(p[..., 1] + NECK_BOTTOM))

    def material(self, p: torch.Tensor) -> torch.Tensor:
        """Material id (...) int64 of surface points p (..., 3): the part nearest the point."""
        d = self._parts(self._to_local(p))
        skin = d["skin"]
        # Which part of the head surface: cavity wall (mouth), lips ring, ear or plain skin.
        skin_id = torch.full_like(skin, SKIN, dtype=torch.int64)
        skin_id = torch.where(d["ear"] <= skin + 1e-4, torch.full_like(skin_id, EAR), skin_id)
        skin_id = torch.where(d["lips"] < 0.0, torch.full_like(skin_id, LIPS), skin_id)
        skin_id = torch.where(-d["mouth"] >= skin - 1e-4, torch.full_like(skin_id, MOUTH), skin_id)
        names = [("skin", None), ("hair", HAIR), ("eye", EYE), ("brow", BROW),
                 ("glasses", GLASSES), ("hat", HAT)]
        dist = torch.stack([d[n] for n, _ in names if n in d], dim=-1)
        ids = torch.tensor([SKIN if i is None else i for n, i in names if n in d], device=p.device)
        nearest = dist.argmin(dim=-1)
        mat = ids[nearest]
        return torch.where(nearest == 0, skin_id, mat)

    def albedo(self, p: torch.Tensor) -> torch.Tensor:
        """RGB albedo in [0, 1] of surface points p (..., 3) -> (..., 3). A function of the 3D
        position only (material + procedural texture), so all views agree."""
        P = self.params
        local = self._to_local(p)
        mat = self.material(p)
        palette = torch.tensor([P.skin, P.hair, (0.95, 0.95, 0.93), P.lips, (0.35, 0.08, 0.10),
                                tuple(c * 0.8 for c in P.hair), (0.08, 0.08, 0.1), P.hat_colour,
                                tuple(c * 0.93 for c in P.skin)], dtype=p.dtype, device=p.device)
        rgb = palette[mat]
        f, ph = P.texture_freq, P.texture_phase
        x, y, z = local.unbind(-1)
        # Skin: smooth blotches; hair: strands along the skull's meridians.
        blotch = (torch.sin(f[0] * x + ph[0]) * torch.sin(f[1] * y + ph[1])
                  + 0.5 * torch.sin(f[2] * z + ph[2] + 2 * f[0] * x)) * P.texture_amp
        strands = 0.12 * torch.sin(70.0 * torch.atan2(x, z - 0.1) + 20 * y + ph[0])
        tex = torch.where((mat == HAIR) | (mat == BROW), strands, blotch)
        # Eyes: a dark pupil inside a coloured iris, facing +z (looking forward).
        eye_x = torch.where(x < 0, x + P.eye_spacing, x - P.eye_spacing)
        dx = torch.stack([eye_x, y - 0.03, z - 0.158], dim=-1) / P.eye_radius
        cosang = dx[..., 2]
        iris = torch.tensor(P.iris, dtype=p.dtype, device=p.device)
        pupil = torch.tensor((0.03, 0.03, 0.03), dtype=p.dtype, device=p.device)
        eye_rgb = torch.where((cosang > 0.95)[..., None], pupil,
                              torch.where((cosang > 0.8)[..., None], iris, rgb))
        rgb = torch.where((mat == EYE)[..., None], eye_rgb, rgb * (1.0 + tex[..., None]))
        return rgb.clamp(0, 1)


# ---- sphere tracing -------------------------------------------------------------------------------

def _as_cameras(camera) -> torch.Tensor:
    if not isinstance(camera, torch.Tensor):
        raise ValueError(f"camera must be a torch.Tensor of shape (B, 25) or (25,), got {type(camera).__name__}")
    if camera.dim() == 1:
        camera = camera[None]
    if camera.dim() != 2 or camera.shape[1] != 25:
        raise ValueError(f"camera must have shape (B, 25) or (25,), got {tuple(camera.shape)}")
    if not camera.is_floating_point() or not bool(torch.isfinite(camera).all()):
        raise ValueError("camera must be a finite floating-point tensor")
    return camera.float()


def trace(scene, origins: torch.Tensor, directions: torch.Tensor, t_start: torch.Tensor,
          t_end: torch.Tensor, max_steps: int = 96, step_scale: float = 0.9,
          hit_eps: float = 5e-4, bracket: float = 0.01, bisections: int = 24):
    """Sphere-trace ``scene.sdf`` along rays and refine hits by bisection.

    Args:
        origins, directions: (R, 3) ray origins and unit directions.
        t_start, t_end: (R,) search interval along each ray.
        step_scale: fraction of the SDF bound taken per step (< 1 for robustness).
        hit_eps: a ray whose SDF falls below this is a candidate hit; it is then bracketed by a
            point ``bracket`` further on with a negative SDF and bisected ``bisections`` times (the
            depth then lies within (bracket/2^bisections) of the zero set). A candidate without a
            negative point ahead (a grazing ray) is kept only if its SDF is already below 1e-5.

    Returns:
        t (R,) hit distance (``t_end`` where missed) and hit (R,) bool.
    """
    R = origins.shape[0]
    t = t_start.clone()
    active = torch.arange(R, device=origins.device)
    candidate = torch.zeros(R, dtype=torch.bool, device=origins.device)
    for _ in range(max_steps):
        if active.numel() == 0:
            break
        ta = t[active]
        d = scene.sdf(origins[active] + ta[:, None] * directions[active])
        near = d < hit_eps
        candidate[active[near]] = True
        ta = ta + step_scale * d.clamp(min=0)
        t[active] = ta
        keep = (~near) & (ta < t_end[active])
        active = active[keep]
    # Bracket each candidate between t_lo (sdf >= 0) and the first t_lo + s (s = 1, 2, 4, 8 x
    # bracket/8) with sdf < 0 (small steps first, so thin parts are not stepped over), then bisect.
    idx = candidate.nonzero().squeeze(1)
    hit = torch.zeros(R, dtype=torch.bool, device=origins.device)
    if idx.numel():
        o, dr = origins[idx], directions[idx]
        lo = t[idx]
        d_lo = scene.sdf(o + lo[:, None] * dr)
        lo = torch.where(d_lo < 0, lo - bracket, lo)  # landed inside (loose bound): back off
        hi = lo.clone()
        bracketed = torch.zeros_like(lo, dtype=torch.bool)
        for s in (bracket / 8, bracket / 4, bracket / 2, bracket):
            neg = (scene.sdf(o + (lo + s)[:, None] * dr) < 0) & ~bracketed
            hi = torch.where(neg, lo + s, hi)
            bracketed |= neg
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            neg = scene.sdf(o + mid[:, None] * dr) < 0
            hi = torch.where(neg, mid, hi)
            lo = torch.where(neg, lo, mid)
        ok = bracketed | (d_lo.abs() < 1e-5)
        t[idx] = torch.where(bracketed, lo, t[idx])
        hit[idx] = ok
    t = torch.where(hit, t, t_end)
    return t, hit


def _normals(scene, p: torch.Tensor, h: float = 5e-4) -> torch.Tensor:
    """Unit normals (..., 3) by the tetrahedron finite-difference of the SDF."""
    k = p.new_tensor([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]])
    n = sum(k[i] * scene.sdf(p + h * k[i])[..., None] for i in range(4))
    return torch.nn.functional.normalize(n, dim=-1)


def render_scene(scene, camera, resolution: int, background=1.0,
                 background_depth: float = BACKGROUND_DEPTH) -> dict:
    """Render an SDF scene (``sdf``/``albedo`` methods) from EG3D cameras; see ``render_head``."""
    c = _as_cameras(camera)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    bg = torch.as_tensor(background, dtype=torch.float32).flatten()
    if bg.numel() not in (1, 3) or not bool(((bg >= -1) & (bg <= 1)).all()):
        raise ValueError(f"background must be a number or 3 numbers in [-1, 1], got {background!r}")
    if not (isinstance(background_depth, (int, float)) and background_depth > 0):
        raise ValueError(f"background_depth must be a positive number, got {background_depth!r}")
    B, H = c.shape[0], resolution
    origins, dirs = camera_rays(c, resolution)            # (B, R, 3) each, unit directions
    start, end, inbox = ray_box_intersect(origins, dirs, 1.0)
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    t0 = start.reshape(-1).clamp(min=0)
    t1 = torch.where(inbox.reshape(-1), end.reshape(-1), t0)  # rays missing the box: no search
    t, hit = trace(scene, o, d, t0, torch.minimum(t1, torch.full_like(t1, background_depth)))
    rgb = bg.expand(3)[None].repeat(o.shape[0], 1)
    if bool(hit.any()):
        p = o[hit] + t[hit, None] * d[hit]
        n = _normals(scene, p)
        light = torch.nn.functional.normalize(p.new_tensor(_LIGHT_DIR), dim=0)
        shade = _AMBIENT + (1 - _AMBIENT) * (n @ light).clamp(min=0)
        rgb[hit] = (scene.albedo(p) * shade[:, None]) * 2 - 1
    depth = torch.where(hit, t, torch.full_like(t, background_depth))
    return {"rgb": rgb.reshape(B, H, H, 3).permute(0, 3, 1, 2).contiguous(),
            "depth": depth.reshape(B, 1, H, H),
            "mask": hit.reshape(B, 1, H, H).float()}


def render_head(params: HeadParams, camera, resolution: int = 128, background=1.0,
                background_depth: float = BACKGROUND_DEPTH) -> dict:
    """Sphere-trace a procedural head from EG3D cameras.

    Args:
        params: a ``HeadParams`` (from ``sample_head``).
        camera: (B, 25) or (25,) EG3D camera labels (e.g. ``look_at_camera(pi/2 + yaw, pi/2)``).
        resolution: output side in pixels (EG3D pixel/ray order).
        background: background colour in the output's [-1, 1] range (a number or 3 numbers);
            default 1.0 (white).
        background_depth: depth written where no surface is hit (default 3.3, EG3D FFHQ's
            ray_end; every head point is nearer from cameras on the radius-2.7 sphere).

    Returns:
        dict with ``rgb`` (B, 3, H, W) float32 in [-1, 1] (albedo x (ambient + Lambert) of a fixed
        world light), ``depth`` (B, 1, H, W) float32, the distance along the unit ray to the surface
        (EG3D's image_depth convention), and ``mask`` (B, 1, H, W) float32 in {0, 1}: 1 where the
        ray hits the head (exactly where depth < background_depth).
    """
    if not isinstance(params, HeadParams):
        raise ValueError(f"params must be a HeadParams (see sample_head), got {type(params).__name__}")
    return render_scene(HeadScene(params), camera, resolution, background, background_depth)


def yaw_cameras(yaws_degrees, elevation_degrees: float = 0.0) -> torch.Tensor:
    """FFHQ look-at cameras (``cameras.FFHQ``) at the given yaws and one elevation (degrees of
    the camera position; positive yaw moves the camera toward +x, positive elevation up) ->
    (len(yaws), 25)."""
    yaws = torch.as_tensor(yaws_degrees, dtype=torch.float32).reshape(-1)
    return camera_from_angles(yaws, torch.full_like(yaws, float(elevation_degrees)))


# The alignment convention of this head family (``inversion.align.convention``), measured by
# ``python -m inversion.align.calibrate`` (2026-11-25: placement from seeds 0-5 at 256 px, 54
# renders; bias from 160 random views of seeds 0-19); the default generator's training writes it
# into the shipped generator's JSON as its ``alignment``.
PROCEDURAL_HEADS_ALIGNMENT = {
    "focal": FFHQ.focal, "radius": FFHQ.radius, "pivot": list(FFHQ.pivot), "world_per_cm": 0.022822,
    "mesh_origin": [-0.002001, -0.054651, 0.091386],
    "mesh_rotation": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    "yaw_bias": [4.0671, -0.1958], "elevation_bias": [4.6276, -8.1826, -1.7759, 6.4094],
    "name": "procedural-heads"}
