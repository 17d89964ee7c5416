"""EG3D's three super-resolution modules (docs/eg3d.md section 10), EG3D parameter names.

All take (rgb (B, 3, h, h), features (B, 32, h, h), ws (B, num_ws, 512)) and use only the last w,
repeated 3 times. Their input is resized (bilinear, antialias as configured) to the module's input
resolution when it differs. Unlike EG3D, ``rgb`` is never modified in place (EG3D's NoUp block
adds into it, which aliases ``image_raw``; see ``TriPlaneGenerator(aliased_image_raw=...)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .stylegan2 import SynthesisBlock, setup_filter

W_DIM = 512  # hard-coded in EG3D's super-resolution modules


class _Superresolution(nn.Module):
    input_resolution: int
    resize_when: str  # "ne": resize when the size differs; "lt": only when smaller

    def __init__(self, img_resolution: int, expected: int, sr_num_fp16_res: int, sr_antialias: bool):
        super().__init__()
        if img_resolution != expected:
            raise ValueError(f"img_resolution must be {expected} for {type(self).__name__}, got {img_resolution}")
        self.sr_antialias = sr_antialias
        self.conv_clamp = 256 if sr_num_fp16_res > 0 else None  # EG3D ties the clamp to fp16 use

    def _resize(self, t: torch.Tensor) -> torch.Tensor:
        size = t.shape[-1]
        needed = size != self.input_resolution if self.resize_when == "ne" else size < self.input_resolution
        if not needed:
            return t
        return F.interpolate(t, size=(self.input_resolution, self.input_resolution), mode="bilinear",
                             align_corners=False, antialias=self.sr_antialias)

    def forward(self, rgb, x, ws, return_aliased_rgb: bool = False, **block_kwargs):
        """-> image (B, 3, img_res, img_res); with ``return_aliased_rgb`` also the value EG3D's
        in-place add leaves in its ``image_raw`` (rgb + block0's torgb when block0 is a NoUp block
        fed an un-resized input; rgb unchanged otherwise)."""
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        resized = x.shape[-1] != self._resize(x[:1, :1]).shape[-1]
        x, img = self._resize(x), self._resize(rgb)
        x, img = self.block0(x, img, ws, **block_kwargs)
        aliased = img if (not self.block0.upsample and not resized) else rgb
        x, img = self.block1(x, img, ws, **block_kwargs)
        return (img, aliased) if return_aliased_rgb else img


class SuperresolutionHybrid2X(_Superresolution):
    input_resolution, resize_when = 64, "ne"

    def __init__(self, channels, img_resolution, sr_num_fp16_res=0, sr_antialias=True, **block_kwargs):
        super().__init__(img_resolution, 128, sr_num_fp16_res, sr_antialias)
        kw = dict(w_dim=W_DIM, img_channels=3, conv_clamp=self.conv_clamp, **_block_kwargs(block_kwargs))
        self.block0 = SynthesisBlock(channels, 128, resolution=64, is_last=False, upsample=False, **kw)
        self.block1 = SynthesisBlock(128, 64, resolution=128, is_last=True, **kw)
        self.register_buffer("resample_filter", setup_filter())


class SuperresolutionHybrid4X(_Superresolution):
    input_resolution, resize_when = 128, "lt"

    def __init__(self, channels, img_resolution, sr_num_fp16_res=0, sr_antialias=True, **block_kwargs):
        super().__init__(img_resolution, 256, sr_num_fp16_res, sr_antialias)
        kw = dict(w_dim=W_DIM, img_channels=3, conv_clamp=self.conv_clamp, **_block_kwargs(block_kwargs))
        self.block0 = SynthesisBlock(channels, 128, resolution=128, is_last=False, upsample=False, **kw)
        self.block1 = SynthesisBlock(128, 64, resolution=256, is_last=True, **kw)
        self.register_buffer("resample_filter", setup_filter())


class SuperresolutionHybrid8XDC(_Superresolution):
    input_resolution, resize_when = 128, "ne"

    def __init__(self, channels, img_resolution, sr_num_fp16_res=0, sr_antialias=True, **block_kwargs):
        super().__init__(img_resolution, 512, sr_num_fp16_res, sr_antialias)
        kw = dict(w_dim=W_DIM, img_channels=3, conv_clamp=self.conv_clamp, **_block_kwargs(block_kwargs))
        self.block0 = SynthesisBlock(channels, 256, resolution=256, is_last=False, **kw)
        self.block1 = SynthesisBlock(256, 128, resolution=512, is_last=True, **kw)


def _block_kwargs(kwargs: dict) -> dict:
    """Keep what the blocks use from EG3D's sr_kwargs (channel_base/max are ignored by EG3D too)."""
    return {k: v for k, v in kwargs.items() if k == "fused_modconv_default"}


SUPERRESOLUTION_MODULES = {
    "training.superresolution.SuperresolutionHybrid2X": SuperresolutionHybrid2X,
    "training.superresolution.SuperresolutionHybrid4X": SuperresolutionHybrid4X,
    "training.superresolution.SuperresolutionHybrid8XDC": SuperresolutionHybrid8XDC,
}
