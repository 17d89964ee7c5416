"""Writing an inversion's pictures: input-view reconstruction, depth, turntable (MP4 via
imageio-ffmpeg, GIF fallback)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from nerfgan_kernels.render import camera_angles, look_at_camera

from .evaluation import LatentSource, latent_for
from .protocol import synthesize


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return ((image.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def write_reconstruction(G, ws: LatentSource, target, folder: Path, synthesis_kwargs: dict | None = None) -> dict:
    """Writes reconstruction.png (target | render) and depth.png of the first view. ws: a latent
    (1, num_ws, w_dim) or a camera -> latent function (``evaluation.latent_for``)."""
    import imageio.v3 as iio
    with torch.no_grad():
        out = synthesize(G, latent_for(ws, target.cameras[:1]), target.cameras[:1], **(synthesis_kwargs or {}))
    image = out["image"][0]
    tgt = torch.nn.functional.interpolate(target.images[:1], size=image.shape[-2:], mode="area")[0]
    iio.imwrite(folder / "reconstruction.png", np.concatenate([to_uint8(tgt), to_uint8(image)], axis=1))
    depth = out["image_depth"][0, 0]
    depth = (depth - depth.min()) / (depth.max() - depth.min()).clamp_min(1e-8)
    iio.imwrite(folder / "depth.png", (depth.cpu().numpy() * 255).astype(np.uint8))
    return {"reconstruction": "reconstruction.png", "depth": "depth.png"}


def write_turntable(G, ws: LatentSource, camera: torch.Tensor, folder: Path, frames: int = 24, yaw_range: float = 0.6,
                    synthesis_kwargs: dict | None = None, fps: int = 12) -> Path:
    """Renders ``frames`` views swinging yaw by +-``yaw_range`` rad around the input camera's
    direction (radius from the input camera) and writes turntable.mp4, or turntable.gif when
    ffmpeg is unavailable. ws: a latent or a camera -> latent function (multi-latent results)."""
    import imageio.v2 as imageio
    c = camera.reshape(1, 25)
    radius = float(c[0, [3, 7, 11]].norm())
    yaw, elev = (math.radians(float(a)) for a in camera_angles(c))
    images = []
    with torch.no_grad():
        for i in range(frames):
            h = math.pi / 2 + yaw + yaw_range * math.sin(2 * math.pi * i / frames)
            cam = look_at_camera(h, math.pi / 2 - elev, radius=radius, intrinsics=c[0, 16:].view(3, 3),
                                 device=c.device)
            images.append(to_uint8(synthesize(G, latent_for(ws, cam), cam, **(synthesis_kwargs or {}))["image"][0]))
    try:
        path = folder / "turntable.mp4"
        imageio.mimwrite(path, images, fps=fps, macro_block_size=1)
    except Exception:  # no ffmpeg backend: GIF
        path = folder / "turntable.gif"
        imageio.mimwrite(path, images, duration=1000 / fps, loop=0)
    return path
