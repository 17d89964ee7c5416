"""Scoring an inversion against exact ground truth (procedural heads): image and depth metrics on the
input view and on held-out views.

A *latent source* is either a ws tensor (1, num_ws, w_dim) used for every camera, or a function
camera (1, 25) -> ws (1, num_ws, w_dim) (multi-latent inversion interpolates latents by viewing
angle). Ground truth comes from ``render_head`` at the generator's output resolution.

Renders for scoring use ``EVAL_SYNTHESIS`` (deterministic sampling: no stratified jitter, where the
generator supports it) unless other synthesis keywords are given, so scores are repeatable and a
single-latent source has exactly zero depth inconsistency.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .losses import ImageLoss, psnr
from .target import Target

LatentSource = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
EVAL_SYNTHESIS = {"deterministic": True}


def evaluate(G, ws: torch.Tensor, target: Target, loss: ImageLoss | None = None,
             synthesis_kwargs: dict | None = None) -> dict:
    """Input-view metrics: psnr (dB, [-1, 1] images), mse, and the loss's perceptual distance."""
    with torch.no_grad():
        cams = target.cameras
        out = G.synthesis(ws.expand(len(cams), -1, -1), cams, **(synthesis_kwargs or {}))["image"]
        images = target.images
        if images.shape[-2:] != out.shape[-2:]:
            images = F.interpolate(images, size=out.shape[-2:], mode="area")
        metrics = {"psnr": psnr(out, images), "mse": F.mse_loss(out, images).item()}
        if loss is not None and loss.perceptual_weight:
            metrics["perceptual"] = float(loss.perceptual_distance(out, images))
            metrics["perceptual_name"] = loss.perceptual_name
    return metrics


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """The standard SSIM that papers report (Wang et al. 2004, as scikit-image's
    ``structural_similarity`` computes it with ``gaussian_weights=True``: 11-pixel Gaussian window,
    sigma 1.5, population covariance, K1 0.01, K2 0.03) of one (1, 3, H, W) pair in [-1, 1], averaged
    over the channels. Images under 11 pixels use a proportionally narrower Gaussian."""
    from skimage.metrics import structural_similarity
    x, y = (((t[0].detach().float().cpu().permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy() for t in (a, b))
    sigma = 1.5 * min(1.0, min(x.shape[:2]) / 11)
    return float(structural_similarity(x, y, data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                       sigma=sigma, use_sample_covariance=False))


def latent_for(source: LatentSource, camera: torch.Tensor) -> torch.Tensor:
    """The ws (1, num_ws, w_dim) a latent source gives for one camera (1, 25)."""
    return source(camera) if callable(source) else source[:1]


def downsample_depth(depth: torch.Tensor, mask: torch.Tensor, size) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth at a lower resolution (e.g. a generator's depth map): depth and {0, 1} mask
    (B, 1, H, W) -> (mean depth over the covered part of each pixel, coverage in [0, 1]), both
    (B, 1, *size); uncovered pixels hold 0 depth."""
    cover = torch.nn.functional.adaptive_avg_pool2d(mask, size)
    depth = torch.nn.functional.adaptive_avg_pool2d(depth * mask, size) / cover.clamp(min=1e-6)
    return depth, cover


def depth_error(depth: torch.Tensor, gt_depth: torch.Tensor, gt_mask: torch.Tensor) -> float:
    """Mean absolute depth error (world units) on the foreground, at the rendered depth's
    resolution: ground truth (B, 1, H, W) depth and {0, 1} mask are area-pooled to depth (B, 1, h, w)
    and only fully covered pixels (coverage > 0.999) count; nan when none is."""
    gt, cover = downsample_depth(gt_depth, gt_mask, depth.shape[-2:])
    full = cover > 0.999
    if not bool(full.any()):
        return float("nan")
    return float((depth - gt).abs()[full].mean())


def render_views(G, source: LatentSource, cameras: torch.Tensor, synthesis_kwargs: dict | None = None):
    """Renders each camera (V, 25) with its latent -> images (V, 3, H, W) in [-1, 1] and depths
    (V, 1, h, w), without gradients."""
    images, depths = [], []
    with torch.no_grad():
        for c in cameras.split(1):
            out = G.synthesis(latent_for(source, c), c, **(synthesis_kwargs or EVAL_SYNTHESIS))
            images.append(out["image"])
            depths.append(out["image_depth"])
    return torch.cat(images), torch.cat(depths)


def score_views(G, source: LatentSource, truth: dict, cameras: torch.Tensor, perceptual=None,
                synthesis_kwargs: dict | None = None) -> dict:
    """Metrics of G's renders against ground truth at ``cameras`` (V, 25).

    truth: ``render_head`` output at the same cameras: 'rgb' (V, 3, H, W) and, for the depth
    error, 'depth' and 'mask' (V, 1, H, W) (a photo target has only 'rgb'). perceptual: an LPIPS
    module (inputs in [-1, 1]) or None.
    Returns {'psnr', 'ssim', ['depth_mae'], ['lpips']}: lists per view, and their means under
    'mean_<name>'; plus 'images' and 'depths' (the renders)."""
    images, depths = render_views(G, source, cameras, synthesis_kwargs)
    gt = truth["rgb"].to(images)
    if gt.shape[-2:] != images.shape[-2:]:
        gt = F.interpolate(gt, size=images.shape[-2:], mode="area")
    with_depth = "depth" in truth and "mask" in truth
    scores = {"psnr": [], "ssim": [], **({"depth_mae": []} if with_depth else {})}
    if perceptual is not None:
        scores["lpips"] = []
    with torch.no_grad():
        for i in range(len(cameras)):
            a, b = images[i:i + 1], gt[i:i + 1]
            scores["psnr"].append(psnr(a, b))
            scores["ssim"].append(ssim(a, b))
            if with_depth:
                scores["depth_mae"].append(depth_error(depths[i:i + 1], truth["depth"][i:i + 1].to(depths),
                                                       truth["mask"][i:i + 1].to(depths)))
            if perceptual is not None:
                scores["lpips"].append(float(perceptual(a, b).mean()))
    means = {f"mean_{k}": sum(v) / len(v) for k, v in scores.items()}
    return {**scores, **means, "images": images, "depths": depths}


def depth_consistency(G, source: LatentSource, frame_cameras: torch.Tensor, eval_cameras: torch.Tensor,
                      synthesis_kwargs: dict | None = None) -> float:
    """The multi-latent paper's depth consistency (docs/algorithms.md section 5; lower is better): for
    every evaluation camera j (eval_cameras (J, 25)), render depth from the latent the source gives
    at each evaluation frame i (frame_cameras (F, 25)); take the per-pixel standard deviation
    across i and return its mean over pixels and cameras. 0 for a single-latent source."""
    latents = torch.cat([latent_for(source, c) for c in frame_cameras.split(1)])  # (F, num_ws, w_dim)
    stds = []
    with torch.no_grad():
        for c in eval_cameras.split(1):
            depth = G.synthesis(latents, c.expand(len(latents), -1),
                               **(synthesis_kwargs or EVAL_SYNTHESIS))["image_depth"]
            stds.append(depth.std(0, unbiased=False).mean())
    return float(torch.stack(stds).mean())
