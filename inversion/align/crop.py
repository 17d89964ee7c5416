"""Cut a rotated square out of a photo (the alignment crop) and draw the alignment overlay.

Photo coordinates are continuous pixels: (0, 0) is the top-left corner of the top-left pixel,
x right, y down (pixel (row i, column j) has its centre at (j + 0.5, i + 0.5)).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .convention import crop_axes


def crop_grid(center, side: float, roll: float, resolution: int) -> np.ndarray:
    """(resolution, resolution, 2) photo coordinates (x, y) of the output pixel centres."""
    t = (np.arange(resolution) + 0.5) / resolution - 0.5
    u, v = np.meshgrid(t, t)                                   # u: column offset, v: row offset
    A = crop_axes(roll)
    offsets = np.stack([u, v], -1) * side
    return np.asarray(center, dtype=np.float64) + offsets @ A.T


def outside_fraction(center, side: float, roll: float, width: int, height: int, samples: int = 32) -> float:
    """Fraction of the crop's area that falls outside the photo."""
    g = crop_grid(center, side, roll, samples)
    inside = (g[..., 0] >= 0) & (g[..., 0] <= width) & (g[..., 1] >= 0) & (g[..., 1] <= height)
    return float(1.0 - inside.mean())


def warp_crop(image: np.ndarray, center, side: float, roll: float, resolution: int,
              padding: str = "reflection") -> np.ndarray:
    """The crop of ``image`` (H, W, C) or (H, W) (uint8 or float) as a (resolution, resolution[, C])
    array of the same dtype. Bilinear, after an area pre-filter when the crop is downscaled by 2x or
    more (no aliasing); outside the photo: ``padding`` ('reflection', 'border' or 'zeros')."""
    arr = np.asarray(image)
    squeeze = arr.ndim == 2
    x = torch.from_numpy(np.ascontiguousarray(arr[..., None] if squeeze else arr)).float()
    x = x.permute(2, 0, 1)[None]                               # (1, C, H, W)
    k = max(1, int(side / resolution / 1.5))
    if k > 1:
        x = F.avg_pool2d(x, k, ceil_mode=False)                # pixel j covers [j k, (j + 1) k)
    Hs, Ws = x.shape[-2:]
    g = torch.from_numpy(crop_grid(center, side, roll, resolution) / k).float()
    grid = torch.stack([2 * g[..., 0] / Ws - 1, 2 * g[..., 1] / Hs - 1], -1)[None]
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)[0]
    out = out.permute(1, 2, 0).numpy()
    if squeeze:
        out = out[..., 0]
    if arr.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(arr.dtype)


# ---- overlay ------------------------------------------------------------------------------------

def _stamp(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, color, radius: int) -> None:
    H, W = img.shape[:2]
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            cx, cy = np.rint(xs - 0.5).astype(int) + dx, np.rint(ys - 0.5).astype(int) + dy
            ok = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)
            img[cy[ok], cx[ok]] = color


def draw_line(img: np.ndarray, p0, p1, color, width: int = 1) -> None:
    """Draw a segment between photo points p0, p1 into img (H, W, 3) uint8, in place."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    n = math.ceil(np.abs(p1 - p0).max()) + 2
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = p0 + t * (p1 - p0)
    _stamp(img, pts[:, 0], pts[:, 1], color, width // 2)


def draw_overlay(image: np.ndarray, landmarks: np.ndarray, corners: np.ndarray, axes_origin,
                 axes_tips: np.ndarray) -> np.ndarray:
    """A copy of image (H, W, 3) uint8 with the landmarks (N, >=2) as dots, the crop box (4, 2
    corners, its top edge thicker) and the head axes (from ``axes_origin`` (2,) to ``axes_tips``
    (3, 2): x red, y green, z blue)."""
    out = np.array(image, dtype=np.uint8, copy=True)
    scale = max(out.shape[:2]) / 512
    width = max(1, round(2 * scale))
    _stamp(out, landmarks[:, 0], landmarks[:, 1], (0, 255, 0), max(0, width // 2))
    for i in range(4):
        draw_line(out, corners[i], corners[(i + 1) % 4], (255, 220, 0), width * (2 if i == 0 else 1))
    for tip, color in zip(axes_tips, ((255, 0, 0), (0, 255, 0), (0, 96, 255))):
        draw_line(out, axes_origin, tip, color, width + 1)
    return out
