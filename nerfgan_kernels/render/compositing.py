"""Compositing of decoded samples outside the renderer's own march: what the regularizers compare
between two generators at the same points (NeRFInvertor's explicit term). The same ``composite``
op and conventions as the renderer (EG3D's midpoint colours, exact: no density masking)."""

from __future__ import annotations

import torch

from ..ops.composite import composite


def weighted_colours(out: dict, depths: torch.Tensor, depth_range: tuple[float, float]):
    """Decoder output ``out`` {'rgb': (K, Rc*S, C) colour in the first 3 channels, 'sigma':
    (K, Rc*S, 1)} at depths (Rc, S, 1) shared by the K latents or (K, Rc, S, 1) per latent ->

    weights x midpoint rgb (K, Rc, S-1, 3), accumulated opacity (K, Rc, 1), depth (K, Rc, 1)
    clamped to ``depth_range`` (pass the whole batch's range so chunking changes nothing), raw
    sigma (K, Rc, S, 1)."""
    K = out["sigma"].shape[0]
    d = depths if depths.dim() == 4 else depths.unsqueeze(0).expand(K, -1, -1, -1)
    Rc, S = d.shape[1], d.shape[2]
    rgb = out["rgb"][..., :3].reshape(K, Rc, S, 3)
    sigma = out["sigma"].reshape(K, Rc, S, 1)
    _, depth, weights = composite(rgb, sigma, d, t_min=0.0, alpha_min=0.0, depth_range=depth_range)
    mid = (rgb[:, :, :-1] + rgb[:, :, 1:]) / 2
    return weights * mid, weights.sum(2), depth, sigma
