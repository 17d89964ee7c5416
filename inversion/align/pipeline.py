"""Photo or video -> aligned crops, masks, EG3D labels and overlays (what ``nerfgan-align`` runs).

Per image: read it (RGB; unreadable or greyscale files are refused), detect the face landmarks
(MediaPipe; the largest face is kept, with a warning when there are several), fit the head pose
(pose.py), turn it into the EG3D label and the matching crop (convention.py), refuse faces that
are too small or whose crop falls too far outside the photo, cut the crop and the person mask, and
draw the overlay. Video: frames sampled evenly, the per-frame poses (view angles, roll, crop centre
and size) smoothed over time with a Gaussian before cropping.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..target import Target, image_from_array, mask_from_array, read_video_frames
from .convention import Convention, camera_from_angles, crop_corners
from .crop import draw_overlay, outside_fraction, warp_crop
from .pose import Pose, canonical_mesh, fit_pose


class AlignmentError(ValueError):
    """A photo that cannot be aligned; the message names the file and the reason."""


@dataclass
class Measurement:
    """What alignment measured on one photo, before cropping (angles in degrees, photo pixels)."""
    landmarks: np.ndarray   # (478, 3)
    pose: Pose
    yaw: float
    elevation: float
    roll: float
    center: np.ndarray      # (2,) crop centre
    side: float             # crop side
    warnings: list = field(default_factory=list)


@dataclass
class Aligned:
    """One aligned image: crop (res, res, 3) uint8, mask (res, res) uint8, label (25,) float32."""
    name: str
    crop: np.ndarray
    mask: np.ndarray
    label: torch.Tensor
    overlay: np.ndarray
    measurement: Measurement

    def record(self) -> dict:
        m = self.measurement
        return {"file": self.name, "yaw": round(m.yaw, 3), "elevation": round(m.elevation, 3),
                "roll_removed": round(m.roll, 3), "crop_center": [round(float(v), 2) for v in m.center],
                "crop_side": round(m.side, 2), "fit_rms_px": round(m.pose.rms, 3), "warnings": m.warnings}


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB; AlignmentError naming the file if unreadable or greyscale."""
    import imageio.v3 as iio
    try:
        arr = np.asarray(iio.imread(os.fspath(path)))
    except Exception as e:  # noqa: BLE001 - imageio raises many types for bad files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AlignmentError(f"{path}: cannot read the image ({reason})") from None
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1) or (
            arr.ndim == 3 and arr.shape[2] == 3 and np.array_equal(arr[..., 0], arr[..., 1])
            and np.array_equal(arr[..., 1], arr[..., 2])):
        raise AlignmentError(f"{path}: greyscale image; alignment needs a colour (RGB) photo")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise AlignmentError(f"{path}: expected an RGB image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            arr = (arr // 257).astype(np.uint8)
        else:
            raise AlignmentError(f"{path}: expected 8-bit RGB, got {arr.dtype}")
    return np.ascontiguousarray(arr)


class Aligner:
    """Aligns photos for one generator: its crop resolution and its ``Convention``.

    min_face: smallest crop side in photo pixels (smaller faces are refused);
    max_outside: largest fraction of the crop allowed outside the photo (the rest is reflected)."""

    def __init__(self, resolution: int = 512, convention: Convention | None = None,
                 min_face: float = 64.0, max_outside: float = 0.2, detector=None):
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
            raise ValueError(f"resolution must be an int >= 8, got {resolution!r}")
        if not 0 <= max_outside < 1:
            raise ValueError(f"max_outside must be in [0, 1), got {max_outside!r}")
        self.resolution, self.min_face, self.max_outside = resolution, float(min_face), float(max_outside)
        self.convention = convention or Convention()
        if detector is None:
            from .detect import FaceDetector
            detector = FaceDetector()
        self.detector = detector

    @classmethod
    def for_generator(cls, G, **kwargs) -> Aligner:
        return cls(int(G.img_resolution), Convention.for_generator(G), **kwargs)

    def close(self) -> None:
        self.detector.close()

    # ---- steps -----------------------------------------------------------------------------------

    def measure(self, image: np.ndarray, name: str = "image") -> Measurement:
        faces = self.detector.landmarks(image)
        if not faces:
            raise AlignmentError(f"{name}: no face found")
        notes = []
        if len(faces) > 1:
            notes.append(f"{len(faces)} faces found; the largest is kept")
            warnings.warn(f"{name}: {notes[-1]}", stacklevel=2)
        pose = fit_pose(faces[0])
        cam, box = self.convention.camera(pose), self.convention.crop_box(pose)
        return Measurement(faces[0], pose, cam["yaw"], cam["elevation"], cam["roll"],
                           box["center"], box["side"], notes)

    def check(self, m: Measurement, width: int, height: int, name: str) -> None:
        if m.side < self.min_face:
            raise AlignmentError(f"{name}: face too small (the crop would be {m.side:.0f} px wide, "
                                 f"at least {self.min_face:.0f} px needed)")
        out = outside_fraction(m.center, m.side, m.roll, width, height)
        if out > self.max_outside:
            raise AlignmentError(f"{name}: face too close to the border ({100 * out:.0f}% of the crop "
                                 f"falls outside the photo, at most {100 * self.max_outside:.0f}% allowed)")

    def cut(self, image: np.ndarray, m: Measurement, name: str) -> Aligned:
        """Crop, mask, label and overlay of a measured photo (``name``: its path, for messages;
        the result is named by the file name)."""
        self.check(m, image.shape[1], image.shape[0], name)
        label = camera_from_angles(m.yaw, m.elevation, self.convention)
        crop = warp_crop(image, m.center, m.side, m.roll, self.resolution)
        person = self.detector.person_mask(image)
        mask = warp_crop(np.rint(person * 255).astype(np.uint8), m.center, m.side, m.roll,
                         self.resolution, padding="zeros")
        anchor = canonical_mesh()[0].mean(0)
        axes = anchor + 6.0 * np.eye(3)                       # 6 cm along the head's x, y, z
        pts = m.pose.project(np.vstack([anchor, axes]))
        overlay = draw_overlay(image, m.landmarks, crop_corners(m.center, m.side, m.roll), pts[0], pts[1:])
        return Aligned(Path(name).name, crop, mask, label, overlay, m)

    def align(self, image: np.ndarray, name: str = "image") -> Aligned:
        return self.cut(image, self.measure(image, name), name)

    def align_file(self, path: str | os.PathLike) -> Aligned:
        return self.align(read_photo(path), str(path))

    def align_files(self, paths) -> tuple[list[Aligned], list[str]]:
        """Align photo files; returns (aligned, errors: one message per file that failed)."""
        aligned, errors = [], []
        for path in paths:
            try:
                aligned.append(self.align_file(path))
            except AlignmentError as e:
                errors.append(str(e))
        return aligned, errors

    def align_video(self, video: str | os.PathLike, frames: int = 8, smooth: float = 1.0
                    ) -> tuple[list[Aligned], list[str]]:
        """Frames sampled evenly; poses smoothed over time (Gaussian, ``smooth`` frames; 0 = off).
        Returns (aligned frames, errors of the frames that failed)."""
        picks, arrays = read_video_frames(video, frames)
        stem = Path(video).stem
        measured, errors = [], []
        for idx, arr in zip(picks, arrays):
            name = f"{stem}_{idx:05d}.png"
            try:
                if arr.ndim != 3 or arr.shape[2] < 3:
                    raise AlignmentError(f"{name}: greyscale frame; alignment needs colour")
                img = np.ascontiguousarray(arr[..., :3])
                measured.append((name, img, self.measure(img, name)))
            except AlignmentError as e:
                errors.append(str(e))
        if smooth > 0 and len(measured) > 1:
            smooth_measurements([m for _, _, m in measured], smooth)
        out = []
        for name, img, m in measured:
            try:
                out.append(self.cut(img, m, name))
            except AlignmentError as e:
                errors.append(str(e))
        return out, errors


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """values (T, D) smoothed along T with a normalized Gaussian (edges renormalized)."""
    t = np.arange(len(values))
    w = np.exp(-0.5 * ((t[:, None] - t[None]) / sigma) ** 2)
    return (w @ values) / w.sum(1, keepdims=True)


def smooth_measurements(ms: list[Measurement], sigma: float) -> None:
    """Smooth view direction (as a unit vector), roll, crop centre and log crop size in place."""
    yaw, el = np.radians([m.yaw for m in ms]), np.radians([m.elevation for m in ms])
    d = np.stack([np.cos(el) * np.sin(yaw), np.sin(el), np.cos(el) * np.cos(yaw)], 1)
    d = _gaussian_smooth(d, sigma)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    roll = _gaussian_smooth(np.array([[m.roll] for m in ms]), sigma)[:, 0]
    center = _gaussian_smooth(np.stack([m.center for m in ms]), sigma)
    side = np.exp(_gaussian_smooth(np.log([[m.side] for m in ms]), sigma))[:, 0]
    for i, m in enumerate(ms):
        m.yaw = math.degrees(math.atan2(d[i, 0], d[i, 2]))
        m.elevation = math.degrees(math.asin(np.clip(d[i, 1], -1, 1)))
        m.roll, m.center, m.side = float(roll[i]), center[i], float(side[i])


def aligned_target(aligned: list[Aligned]) -> Target:
    """The inversion target of aligned images, in memory: crops (N, 3, res, res) in [-1, 1],
    labels (N, 25), person masks (N, 1, res, res) in [0, 1] (what ``load_target`` reads back
    from the folder ``write_aligned`` writes)."""
    if not aligned:
        raise ValueError("aligned must hold at least one aligned image")
    return Target(torch.stack([image_from_array(a.crop) for a in aligned]),
                  torch.stack([a.label.float().reshape(25) for a in aligned]),
                  torch.stack([mask_from_array(a.mask) for a in aligned]))


def write_aligned(out_dir: str | os.PathLike, aligned: list[Aligned], errors: list[str],
                  convention: Convention) -> Path:
    """OUT/NAME.png crops, OUT/masks/NAME.png, OUT/overlays/NAME.jpg, OUT/dataset.json (EG3D
    labels) and OUT/alignment.json (angles, crop boxes, warnings, errors, convention)."""
    import imageio.v3 as iio
    out = Path(out_dir)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    labels = []
    for a in aligned:
        stem = Path(a.name).stem
        iio.imwrite(out / f"{stem}.png", a.crop)
        iio.imwrite(out / "masks" / f"{stem}.png", a.mask)
        iio.imwrite(out / "overlays" / f"{stem}.jpg", a.overlay, quality=90)
        labels.append([f"{stem}.png", [float(v) for v in a.label]])
    (out / "dataset.json").write_text(json.dumps({"labels": labels}))
    report = {"images": [a.record() for a in aligned], "errors": errors,
              "convention": convention.to_dict(),
              "angles": "yaw = atan2(x, z), elevation = atan2(y, hypot(x, z)) of the camera position, degrees"}
    (out / "alignment.json").write_text(json.dumps(report, indent=1))
    return out
