"""NeRFInvertor's fine-tuning stage on EG3D-like generators (docs/algorithms.md section 3).

Each step: reconstruction at the input camera with w* (MSE x 1 + perceptual x 1), and for K
neighbour latents w_n = w* + alpha (w_rand - w*)/||.|| at V random cameras:
explicit geometric regularization (L1 of per-sample weight x rgb, G vs frozen G0 at the same
points; optional raw-density and depth L1), implicit regularization (MSE + perceptual between G and
G0 neighbour images), and the masked term: accumulated opacity of G on the input view's
background rays (target mask, or G0's opacity at w* when ``masked`` and no mask is given).
``masked=True`` also gives the masked variants of both regularizers (docs/algorithms.md 3.5; EG3D has
no background layer, so the masks of the neighbour views come from the frozen G0's opacity):
the explicit terms are restricted to G0's foreground rays, G's opacity on G0's background rays is
penalized (x mask_weight), and the implicit term compares only G0's foreground pixels.
Adam lr 2e-5, betas (0, 0.9), grad-norm clip 1.0, EMA of the tuned weights (decay 0.999) used for
the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .loop import LoopConfig
from .losses import ImageLoss
from .neighborhood import calibrate_radius, neighbor_latents, neighborhood_batch, random_cameras
from .protocol import trainable_parameters
from .result import Result
from .stage import StagePlan, configure, run_stage
from .target import Target


@dataclass(frozen=True)
class NeRFInvertorConfig:
    """steps, lr, betas, grad_clip: Adam and the gradient-norm clip. mse_weight /
    perceptual_weight / perceptual: the default loss (reconstruction and implicit term).
    explicit_weight (10), density_weight (0), depth_weight (0): the explicit terms (weight x rgb,
    raw density, depth L1 between G and G0 on ``explicit_resolution``^2 rays with
    ``explicit_samples`` stratified samples where G has no sampler of its own); implicit_weight
    (1): MSE + perceptual between neighbour images of G and G0, every ``implicit_every`` steps;
    mask_weight (10): background opacity when ``target.masks`` is given or ``masked``. masked
    (False): the masked variants, foreground = G0 opacity > mask_threshold (0.5). num_neighbors
    K and num_cameras V per step (1, 1 as published). neighbor_alpha: W-space radius (None:
    ``calibrate_radius`` with ``neighbor_fraction``). ema_decay: EMA of the tuned weights (the
    result); max_memory_bytes: the explicit term's chunking budget; subset: the
    ``G.params_to_tune`` group."""

    steps: int = 1000
    lr: float = 2e-5
    betas: tuple = (0.0, 0.9)
    grad_clip: float = 1.0
    mse_weight: float = 1.0
    perceptual_weight: float = 1.0
    perceptual: object = "lpips-vgg"
    explicit_weight: float = 10.0
    density_weight: float = 0.0
    depth_weight: float = 0.0
    implicit_weight: float = 1.0
    mask_weight: float = 10.0
    masked: bool = False
    mask_threshold: float = 0.5
    num_neighbors: int = 1
    num_cameras: int = 1
    neighbor_alpha: float | None = None
    neighbor_fraction: float = 0.5
    explicit_resolution: int = 128
    explicit_samples: int = 48
    implicit_every: int = 1
    ema_decay: float = 0.999
    max_memory_bytes: float = 256 * 2 ** 20
    subset: str = "all"


def nerfinvertor_tuning(G, target: Target, w_pivot: torch.Tensor, config: NeRFInvertorConfig | None = None,
                        *, loss: ImageLoss | None = None, synthesis_kwargs: dict | None = None,
                        loop: LoopConfig | None = None, seed: int = 0, **options) -> Result:
    """Tune ``G`` in place (its final weights are the EMA when ema_decay > 0).

    w_pivot (1, num_ws, w_dim). config: a ``NeRFInvertorConfig``; keyword ``options`` replace its
    fields. Returns Result('nerfinvertor', ws, delta, timings, metrics incl. 'neighbor_alpha')."""
    cfg = configure(NeRFInvertorConfig, config, options)
    return run_stage("nerfinvertor", G, target, cfg, lambda *a: _plan(*a, w_pivot=w_pivot.detach()),
                     loss=loss, synthesis_kwargs=synthesis_kwargs, loop=loop, seed=seed)


def _plan(G, target: Target, cfg: NeRFInvertorConfig, ctx, *, w_pivot: torch.Tensor) -> StagePlan:
    G0 = G.clone()
    cams, images, loss, kw, ws = target.cameras, target.images, ctx.loss, ctx.synthesis_kwargs, w_pivot
    alpha = cfg.neighbor_alpha
    if alpha is None:
        alpha = calibrate_radius(G0, cams[:1], fraction=cfg.neighbor_fraction, seed=ctx.seed)
    params, tensors = trainable_parameters(G, cfg.subset)
    ema = {f"ema.{n}": p.detach().clone() for n, p in tensors.items()} if cfg.ema_decay > 0 else {}
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas))
    masks = target.masks
    if masks is None and cfg.masked:  # the input view's foreground from G0 at the pivot
        with torch.no_grad():
            out0 = G0.synthesis(ws.expand(len(cams), -1, -1), cams, **kw)
        masks = _opacity_mask(out0, images.shape[-2:], cfg.mask_threshold)
    K, V = cfg.num_neighbors, cfg.num_cameras

    def step_fn(step):
        out = G.synthesis(ws.expand(len(cams), -1, -1), cams, **kw)
        total, terms = loss(out["image"], images)
        if masks is not None and cfg.mask_weight:
            opacity = out["weights_sum"].reshape(len(cams), 1, *out["image_depth"].shape[-2:])
            bg = 1 - torch.nn.functional.interpolate(masks, size=opacity.shape[-2:], mode="area")
            mask_term = (opacity * bg).sum() / bg.sum().clamp_min(1)
            total = total + cfg.mask_weight * mask_term
            terms["mask"] = mask_term.item()
        w_n = neighbor_latents(G0, ws, cams[:1], K, alpha)
        c_n = random_cameras(V, G.metadata.geometry, intrinsics=cams[0, 16:].view(3, 3), device=cams.device)
        if cfg.explicit_weight or cfg.density_weight or cfg.depth_weight:
            reg = neighborhood_batch(G, G0, w_n, c_n, resolution=cfg.explicit_resolution,
                                     n_samples=cfg.explicit_samples, max_memory_bytes=cfg.max_memory_bytes,
                                     masks="reference" if cfg.masked else None,
                                     mask_threshold=cfg.mask_threshold)
            total = total + cfg.explicit_weight * reg["weighted_colour"] + cfg.density_weight * reg["density"] \
                + cfg.depth_weight * reg["depth"] + cfg.mask_weight * reg["background_opacity"]
            terms.update(explicit=reg["weighted_colour"].item(), density=reg["density"].item(),
                         depth=reg["depth"].item())
            if cfg.masked:
                terms["neighbor_background_opacity"] = float(reg["background_opacity"].detach())
        if cfg.implicit_weight and step % cfg.implicit_every == 0:
            wk = w_n.repeat_interleave(V, 0)
            ck = c_n.repeat(K, 1)
            img = G.synthesis(wk, ck, **kw)["image"]
            with torch.no_grad():
                out0 = G0.synthesis(wk, ck, **kw)
            ref = out0["image"]
            if cfg.masked:  # only G0's foreground pixels count: G's background is replaced by G0's
                m = _opacity_mask(out0, img.shape[-2:], cfg.mask_threshold)
                img = ref + m * (img - ref)
            imp, _ = loss(img, ref)
            total = total + cfg.implicit_weight * imp
            terms["implicit"] = imp.item()
        return total, terms

    def after_step(step):
        with torch.no_grad():
            for n, p in tensors.items():
                ema[f"ema.{n}"].lerp_(p.detach(), 1 - cfg.ema_decay)

    def finish(state):
        if ema:  # the result is the EMA of the tuned weights
            with torch.no_grad():
                for n, p in tensors.items():
                    p.copy_(ema[f"ema.{n}"])
        return {"neighbor_alpha": float(alpha)}, {"neighbor_alpha": float(alpha)}

    return StagePlan(cfg.steps, {**tensors, **ema}, optimizer, step_fn, latent=lambda state: ws,
                     grad_clip=cfg.grad_clip, after_step=after_step if ema else None, finish=finish)


def _opacity_mask(out: dict, size, threshold: float) -> torch.Tensor:
    """(B, 1, H, W) foreground in {0, 1} resized to ``size`` (bilinear, so edges are soft): the
    rendered accumulated opacity ``out['weights_sum']`` (at the neural rendering resolution) >
    threshold."""
    B = out["image"].shape[0]
    opacity = out["weights_sum"].reshape(B, 1, *out["image_depth"].shape[-2:])
    fg = (opacity > threshold).float()
    return torch.nn.functional.interpolate(fg, size=tuple(size), mode="bilinear", align_corners=False)
