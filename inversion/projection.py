"""Projection into W and W+ (PTI's stage 1; StyleGAN2-ADA's projector schedule): start at w_avg,
Adam(0.9, 0.999), peak lr 0.01 with 5% ramp-up and cosine ramp-down over the last 25%, Gaussian
noise 0.05 x w_std on w decaying to 0 at 75% of the steps, perceptual loss (+ MSE if asked), and
noise-buffer regularization x 1e5 when the generator has constant noise inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .loop import LoopConfig, projector_lr
from .losses import ImageLoss
from .result import Result
from .stage import StagePlan, configure, run_stage
from .target import Target


def estimate_w_std(G, c: torch.Tensor, n: int = 1000, seed: int = 0) -> float:
    """RMS distance of ``n`` mapped random latents (seeded) from w_avg (the projector's w_std)."""
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(c.device)
        ws = G.mapping(z, c[:1].expand(n, -1))[:, :1]
        return float(((ws - G.w_avg.view(1, 1, -1)) ** 2).sum() / n) ** 0.5


def noise_regularization(buffers) -> torch.Tensor:
    """StyleGAN2-ADA's multi-scale autocorrelation penalty of noise maps (H, W)."""
    reg = 0.0
    for noise in buffers:
        noise = noise[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, 1, dims=3)).mean() ** 2 \
                + (noise * torch.roll(noise, 1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, 2)
    return reg


@dataclass(frozen=True)
class ProjectionConfig:
    """mode: "w" (one w_dim vector broadcast to all num_ws rows) or "wplus" (num_ws free rows).
    steps, lr (peak), lr_rampup / lr_rampdown (fractions), noise_start (x w_std) decaying to 0 at
    noise_ramp: the projector's schedule. mse_weight / perceptual_weight / perceptual: the default
    loss. optimize_noise: also optimize the generator's ``noise_buffers()`` (regularized x
    noise_weight; changed buffers go to the delta). w_std_samples: latents for w_std. view_weights
    (B,): per-view loss weights (None: equal). w_avg_weight: + weight x mean((w - w_avg)^2)."""

    mode: str = "w"
    steps: int = 500
    lr: float = 0.01
    noise_start: float = 0.05
    noise_ramp: float = 0.75
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    mse_weight: float = 0.0
    perceptual_weight: float = 1.0
    perceptual: object = "lpips-vgg"
    optimize_noise: bool = True
    noise_weight: float = 1e5
    w_std_samples: int = 1000
    view_weights: tuple | None = None
    w_avg_weight: float = 0.0


def project(G, target: Target, config: ProjectionConfig | None = None, *, loss: ImageLoss | None = None,
            synthesis_kwargs: dict | None = None, loop: LoopConfig | None = None, seed: int = 0,
            method: str | None = None, **options) -> Result:
    """Optimize a latent so that G renders the target at its camera(s).

    config: a ``ProjectionConfig``; keyword ``options`` replace its fields (``mode="wplus"``,
    ``steps=100``, ...). loss: an ``ImageLoss`` (default: from the config's weights).
    synthesis_kwargs: passed to ``G.synthesis`` (e.g. ``{"deterministic": True}``). Several target
    views (multi-view inversion, docs/algorithms.md section 4): one latent for all. loop:
    checkpointing / progress settings. method: the Result's name (default the mode).
    Returns Result(ws (1, num_ws, w_dim), delta (noise buffers), metrics psnr/mse/perceptual,
    options incl. 'w_std' and 'views').
    """
    cfg = configure(ProjectionConfig, config, options)
    if cfg.mode not in ("w", "wplus"):
        raise ValueError(f"mode must be 'w' or 'wplus', got {cfg.mode!r}")
    return run_stage("projection", G, target, cfg, _plan, loss=loss, synthesis_kwargs=synthesis_kwargs,
                     loop=loop, seed=seed, method=method or cfg.mode, description=f"project-{cfg.mode}")


def _plan(G, target: Target, cfg: ProjectionConfig, ctx) -> StagePlan:
    device = target.images.device
    w_std = estimate_w_std(G, target.cameras, cfg.w_std_samples, ctx.seed)
    rows = 1 if cfg.mode == "w" else G.num_ws
    w_opt = G.w_avg.detach().clone().view(1, 1, -1).repeat(1, rows, 1).to(device).requires_grad_(True)
    buffers = G.noise_buffers() if cfg.optimize_noise else {}
    for b in buffers.values():
        b.requires_grad_(True)
    tensors = {"w": w_opt, **{f"noise.{k}": b for k, b in buffers.items()}}
    optimizer = torch.optim.Adam([w_opt, *buffers.values()], lr=cfg.lr, betas=(0.9, 0.999))
    images, cams, loss = target.images, target.cameras, ctx.loss
    weights = None
    if cfg.view_weights is not None:
        weights = torch.as_tensor(cfg.view_weights, dtype=torch.float32, device=device).flatten()
        if weights.numel() != len(cams) or bool((weights < 0).any()) or not float(weights.sum()) > 0:
            raise ValueError(f"view_weights must be {len(cams)} non-negative numbers (one per view) "
                             f"with a positive sum, got {cfg.view_weights!r}")
        weights = weights / weights.sum()

    def ws_of(w):
        return w.expand(-1, G.num_ws, -1) if cfg.mode == "w" else w

    def step_fn(step):
        t = step / max(1, cfg.steps)
        noise_scale = w_std * cfg.noise_start * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2
        w = w_opt + torch.randn_like(w_opt) * noise_scale
        out = G.synthesis(ws_of(w).expand(len(cams), -1, -1), cams, **ctx.synthesis_kwargs)["image"]
        if weights is None:
            total, terms = loss(out, images)
        else:
            per_view = [loss(out[i:i + 1], images[i:i + 1]) for i in range(len(cams))]
            total = sum(wt * lv for wt, (lv, _) in zip(weights, per_view))
            terms = {k: sum(float(wt) * t[k] for wt, (_, t) in zip(weights, per_view)) for k in per_view[0][1]}
        if cfg.w_avg_weight:
            reg = (w_opt - G.w_avg.view(1, 1, -1)).square().mean()
            total = total + cfg.w_avg_weight * reg
            terms["w_avg_reg"] = reg.item()
        if buffers:
            reg = noise_regularization(buffers.values())
            total = total + cfg.noise_weight * reg
            terms["noise_reg"] = reg.item()
        return total, terms

    def after_step(step):
        with torch.no_grad():  # renormalize the noise maps, as the projector does
            for b in buffers.values():
                b.sub_(b.mean()).div_(b.square().mean().sqrt().clamp_min(1e-8))

    def finish(state):
        return {}, {"w_std": w_std, "views": len(cams),
                    "view_weights": None if weights is None else weights.tolist()}

    return StagePlan(cfg.steps, tensors, optimizer, step_fn, latent=lambda state: ws_of(w_opt.detach()),
                     lr_fn=lambda s: projector_lr(s, cfg.steps, cfg.lr, cfg.lr_rampup, cfg.lr_rampdown),
                     after_step=after_step if buffers else None, finish=finish)
