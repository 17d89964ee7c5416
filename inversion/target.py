"""Inversion targets: images in [-1, 1], their EG3D 25-d cameras, optional foreground masks.

Camera files (docs/design.md "File formats"): a single image's ``{"label": [25 floats]}`` or EG3D's
``dataset.json`` ``{"labels": [["img00.png", [25 floats]], ...]}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Target:
    """images (B, 3, H, W) float32 in [-1, 1]; cameras (B, 25); masks (B, 1, H, W) in [0, 1] or None
    (1 = foreground)."""

    images: torch.Tensor
    cameras: torch.Tensor
    masks: torch.Tensor | None = None

    def __post_init__(self):
        if self.images.dim() == 3:
            self.images = self.images[None]
        if self.cameras.dim() == 1:
            self.cameras = self.cameras[None]
        if self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(self.images.shape)}")
        if self.cameras.dim() != 2 or self.cameras.shape[1] != 25 or len(self.cameras) != len(self.images):
            raise ValueError(f"cameras must be (B, 25) with B = {len(self.images)}, got "
                             f"{tuple(self.cameras.shape)}")
        if self.masks is not None:
            if self.masks.dim() == 3:
                self.masks = self.masks[:, None]
            if self.masks.shape[0] != self.images.shape[0] or self.masks.shape[1] != 1 \
                    or self.masks.shape[-2:] != self.images.shape[-2:]:
                raise ValueError(f"masks must be (B, 1, H, W) matching images, got {tuple(self.masks.shape)}")
        self.images = self.images.float()
        self.cameras = self.cameras.float()

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device) -> Target:
        return Target(self.images.to(device), self.cameras.to(device),
                      None if self.masks is None else self.masks.to(device))

    def resized(self, resolution: int) -> Target:
        """The same target with images (and masks) area-resampled to ``resolution``."""
        if self.images.shape[-1] == resolution and self.images.shape[-2] == resolution:
            return self
        mode = "area" if self.images.shape[-1] > resolution else "bilinear"
        kw = {} if mode == "area" else {"align_corners": False}
        images = F.interpolate(self.images, size=(resolution, resolution), mode=mode, **kw)
        masks = None if self.masks is None else F.interpolate(self.masks, size=(resolution, resolution), mode=mode, **kw)
        return Target(images, self.cameras, masks)


def image_from_array(array: np.ndarray) -> torch.Tensor:
    """(H, W[, C]) uint8 -> (3, H, W) float32 in [-1, 1] (alpha dropped, grey expanded)."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return torch.from_numpy(array[..., :3].astype(np.float32)).permute(2, 0, 1) / 127.5 - 1


def mask_from_array(array: np.ndarray) -> torch.Tensor:
    """Greyscale / RGB(A) mask (H, W[, C]) -> (1, H, W) in [0, 1] (divided by its maximum)."""
    array = np.asarray(array).astype(np.float32)
    if array.ndim == 3:
        array = array[..., 0]
    return torch.from_numpy(array / max(1.0, float(array.max())))[None]


def load_image(path: str | os.PathLike, resolution: int | None = None) -> torch.Tensor:
    """PNG/JPEG -> (3, H, W) float32 in [-1, 1] (alpha dropped, grey expanded)."""
    import imageio.v3 as iio
    image = image_from_array(iio.imread(os.fspath(path)))
    if resolution is not None and image.shape[-1] != image.shape[-2]:
        raise ValueError(f"{path}: image must be square (a crop with its camera) to be resized to "
                         f"{resolution}x{resolution}, got {image.shape[-1]}x{image.shape[-2]}; align the photo "
                         "(no --camera) to get a square crop")
    if resolution is not None and image.shape[-1] != resolution:
        image = Target(image, torch.zeros(25)).resized(resolution).images[0]
    return image


def load_mask(path: str | os.PathLike) -> torch.Tensor:
    """Greyscale / RGB(A) mask image -> (1, H, W) in [0, 1]."""
    import imageio.v3 as iio
    return mask_from_array(iio.imread(os.fspath(path)))


def load_camera(path: str | os.PathLike, image_name: str | None = None) -> torch.Tensor:
    """A ``{"label": [...]}`` file, or a ``dataset.json`` entry for ``image_name`` -> (25,)."""
    data = json.loads(Path(path).read_text())
    if "label" in data:
        label = data["label"]
    elif "labels" in data:
        labels = dict((name, lab) for name, lab in data["labels"])
        if image_name is None:
            if len(labels) != 1:
                raise ValueError(f"image_name is required: {path} holds {len(labels)} labels")
            image_name = next(iter(labels))
        if image_name not in labels:
            raise ValueError(f"image_name {image_name!r} is not in {path}")
        label = labels[image_name]
    else:
        raise ValueError(f"path {path} must hold 'label' or 'labels' (EG3D dataset.json)")
    camera = torch.tensor(label, dtype=torch.float32).flatten()
    if camera.numel() != 25:
        raise ValueError(f"camera label in {path} must have 25 values, got {camera.numel()}")
    return camera


def load_target(images, camera: str | os.PathLike | None = None, masks=None,
                resolution: int | None = None) -> Target:
    """Load one image path or a list of them with their cameras from ``camera`` (a label file or a
    dataset.json; for a folder's dataset.json the entries are looked up by file name)."""
    paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    if camera is None:
        candidate = Path(paths[0]).parent / "dataset.json"
        if not candidate.exists():
            raise ValueError("camera is required (a {'label': [...]} file or a dataset.json)")
        camera = candidate
    imgs = torch.stack([load_image(p, resolution) for p in paths])
    cams = torch.stack([load_camera(camera, Path(p).name if len(paths) > 1 or
                                    "labels" in json.loads(Path(camera).read_text()) else None)
                        for p in paths])
    return Target(imgs, cams, None if masks is None else load_masks(masks, imgs.shape[-1]))


def load_masks(masks, resolution: int) -> torch.Tensor:
    """One mask path or a list of them -> (N, 1, resolution, resolution) in [0, 1] (area-resized)."""
    mpaths = [masks] if isinstance(masks, (str, os.PathLike)) else list(masks)
    mask_t = torch.stack([load_mask(m) for m in mpaths])
    if mask_t.shape[-1] != resolution:
        mask_t = F.interpolate(mask_t, size=(resolution, resolution), mode="area")
    return mask_t


def read_video_frames(video: str | os.PathLike, frames: int) -> tuple[list[int], list[np.ndarray]]:
    """``frames`` frames sampled evenly from a video through imageio: (frame indices, arrays
    (H, W[, C]) uint8)."""
    import imageio.v3 as iio
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive int, got {frames!r}")
    all_frames = [np.asarray(f) for f in iio.imiter(os.fspath(video))]
    if len(all_frames) < frames:
        raise ValueError(f"video {video} has {len(all_frames)} frames, fewer than frames={frames}")
    picks = np.linspace(0, len(all_frames) - 1, frames).round().astype(int).tolist()
    return picks, [all_frames[i] for i in picks]


def load_video_target(video: str | os.PathLike, camera: str | os.PathLike, frames: int = 8,
                      resolution: int | None = None) -> Target:
    """``frames`` frames sampled evenly from a video (imageio) with their cameras from a
    dataset.json whose labels, in file order, belong to the sampled frames (one label each)."""
    if camera is None:
        raise ValueError("camera is required with a video: a dataset.json with one label per sampled frame")
    images = [image_from_array(array) for array in read_video_frames(video, frames)[1]]
    data = json.loads(Path(camera).read_text())
    labels = [lab for _, lab in data.get("labels", [])]
    if len(labels) != frames:
        raise ValueError(f"camera {camera} must hold {frames} labels (one per sampled frame), got {len(labels)}")
    cams = torch.tensor(labels, dtype=torch.float32).reshape(frames, -1)
    if cams.shape[1] != 25:
        raise ValueError(f"camera labels in {camera} must have 25 values, got {cams.shape[1]}")
    target = Target(torch.stack(images), cams)
    return target.resized(resolution) if resolution is not None else target
