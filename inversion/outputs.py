"""Writing an inversion's pictures: input-view reconstruction, depth, turntable (MP4 via
imageio-ffmpeg, GIF fallback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nerfgan_kernels.render.cameras import Geometry, turntable_cameras

from .evaluation import LatentSource, latent_for


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return ((image.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def write_reconstruction(G, ws: LatentSource, target, folder: Path, synthesis_kwargs: dict | None = None) -> dict:
    """Writes reconstruction.png (target | render) and depth.png of the first view. ws: a latent
    (1, num_ws, w_dim) or a camera -> latent function (``evaluation.latent_for``)."""
    import imageio.v3 as iio
    with torch.no_grad():
        out = G.synthesis(latent_for(ws, target.cameras[:1]), target.cameras[:1], **(synthesis_kwargs or {}))
    image = out["image"][0]
    tgt = torch.nn.functional.interpolate(target.images[:1], size=image.shape[-2:], mode="area")[0]
    iio.imwrite(folder / "reconstruction.png", np.concatenate([to_uint8(tgt), to_uint8(image)], axis=1))
    depth = out["image_depth"][0, 0]
    depth = (depth - depth.min()) / (depth.max() - depth.min()).clamp_min(1e-8)
    iio.imwrite(folder / "depth.png", (depth.cpu().numpy() * 255).astype(np.uint8))
    return {"reconstruction": "reconstruction.png", "depth": "depth.png"}


def write_turntable(G, ws: LatentSource, camera: torch.Tensor, folder: Path, frames: int = 24,
                    geometry: Geometry | None = None, synthesis_kwargs: dict | None = None,
                    fps: int = 12) -> Path:
    """Renders the ``frames`` views of ``cameras.turntable_cameras`` around the input camera (yaw
    swinging by the geometry's turntable_yaw at the input's elevation) and writes turntable.mp4,
    or turntable.gif when ffmpeg is unavailable. ws: a latent or a camera -> latent function
    (multi-latent results). geometry: default the generator's (``G.metadata.geometry``)."""
    import imageio.v2 as imageio
    images = []
    with torch.no_grad():
        for cam in turntable_cameras(camera, frames, geometry or G.metadata.geometry):
            cam = cam[None]
            images.append(to_uint8(G.synthesis(latent_for(ws, cam), cam, **(synthesis_kwargs or {}))["image"][0]))
    try:
        path = folder / "turntable.mp4"
        imageio.mimwrite(path, images, fps=fps, macro_block_size=1)
    except Exception:  # no ffmpeg backend: GIF
        path = folder / "turntable.gif"
        imageio.mimwrite(path, images, duration=1000 / fps, loop=0)
    return path
