"""Projection into W and W+ (PTI's stage 1; StyleGAN2-ADA's projector schedule): start at w_avg,
Adam(0.9, 0.999), peak lr 0.01 with 5% ramp-up and cosine ramp-down over the last 25%, Gaussian
noise 0.05 x w_std on w decaying to 0 at 75% of the steps, perceptual loss (+ MSE if asked), and
noise-buffer regularization x 1e5 when the generator has constant noise inputs."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .loop import LoopConfig, projector_lr, run_loop
from .losses import ImageLoss, psnr
from .protocol import noise_buffers, synthesize
from .result import Result, state_delta
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


def project(G, target: Target, *, mode: str = "w", steps: int = 500, lr: float = 0.01,
            noise_start: float = 0.05, noise_ramp: float = 0.75, lr_rampup: float = 0.05,
            lr_rampdown: float = 0.25, mse_weight: float = 0.0, perceptual_weight: float = 1.0,
            perceptual="lpips-vgg", loss: ImageLoss | None = None, optimize_noise: bool = True,
            noise_weight: float = 1e5, w_std_samples: int = 1000, view_weights=None,
            w_avg_weight: float = 0.0, synthesis_kwargs: dict | None = None,
            loop: LoopConfig | None = None, seed: int = 0) -> Result:
    """Optimize a latent so that G renders the target at its camera(s).

    mode: "w" (one w_dim vector broadcast to all num_ws rows) or "wplus" (num_ws free rows).
    loss: an ``ImageLoss``; built from mse_weight / perceptual_weight / perceptual when None.
    optimize_noise: also optimize G's constant noise buffers (changed buffers go to the delta).
    synthesis_kwargs: passed to ``G.synthesis`` (e.g. ``{"deterministic": True}``).
    Several target views (multi-view inversion, docs/algorithms.md section 4): one latent for all;
    view_weights (B,) scale each view's loss (None: equal; the loss is their weighted mean);
    w_avg_weight: + weight x mean((w - w_avg)^2) (the multi-view paper uses 1.0; 0 by default).
    loop: checkpointing / progress settings (its ``steps`` is replaced by ``steps``).
    Returns Result(ws (1, num_ws, w_dim), delta (noise buffers), metrics psnr/mse/perceptual).
    """
    if mode not in ("w", "wplus"):
        raise ValueError(f"mode must be 'w' or 'wplus', got {mode!r}")
    t_start = time.perf_counter()
    device = target.images.device
    loss = loss or ImageLoss(mse_weight, perceptual_weight, perceptual)
    base_state = {k: v.clone() for k, v in G.state_dict().items()}
    w_std = estimate_w_std(G, target.cameras, w_std_samples, seed)
    rows = 1 if mode == "w" else G.num_ws
    w_opt = G.w_avg.detach().clone().view(1, 1, -1).repeat(1, rows, 1).to(device).requires_grad_(True)
    buffers = noise_buffers(G) if optimize_noise else {}
    for b in buffers.values():
        b.requires_grad_(True)
    tensors = {"w": w_opt, **{f"noise.{k}": b for k, b in buffers.items()}}
    optimizer = torch.optim.Adam([w_opt, *buffers.values()], lr=lr, betas=(0.9, 0.999))
    synthesis_kwargs = dict(synthesis_kwargs or {})
    images, cams = target.images, target.cameras
    weights = None
    if view_weights is not None:
        weights = torch.as_tensor(view_weights, dtype=torch.float32, device=device).flatten()
        if weights.numel() != len(cams) or bool((weights < 0).any()) or not float(weights.sum()) > 0:
            raise ValueError(f"view_weights must be {len(cams)} non-negative numbers (one per view) "
                             f"with a positive sum, got {view_weights!r}")
        weights = weights / weights.sum()

    def ws_of(w):
        return w.expand(-1, G.num_ws, -1) if mode == "w" else w

    def step_fn(step):
        t = step / max(1, steps)
        noise_scale = w_std * noise_start * max(0.0, 1.0 - t / noise_ramp) ** 2
        w = w_opt + torch.randn_like(w_opt) * noise_scale
        out = synthesize(G, ws_of(w).expand(len(cams), -1, -1), cams, **synthesis_kwargs)["image"]
        if weights is None:
            total, terms = loss(out, images)
        else:
            per_view = [loss(out[i:i + 1], images[i:i + 1]) for i in range(len(cams))]
            total = sum(wt * lv for wt, (lv, _) in zip(weights, per_view))
            terms = {k: sum(float(wt) * t[k] for wt, (_, t) in zip(weights, per_view)) for k in per_view[0][1]}
        if w_avg_weight:
            reg = (w_opt - G.w_avg.view(1, 1, -1)).square().mean()
            total = total + w_avg_weight * reg
            terms["w_avg_reg"] = reg.item()
        if buffers:
            reg = noise_regularization(buffers.values())
            total = total + noise_weight * reg
            terms["noise_reg"] = reg.item()
        return total, terms

    def after_step(step):
        with torch.no_grad():  # renormalize the noise maps, as the projector does
            for b in buffers.values():
                b.sub_(b.mean()).div_(b.square().mean().sqrt().clamp_min(1e-8))

    config = loop or LoopConfig(steps=steps)
    config.steps, config.seed = steps, seed
    config.description = f"project-{mode}"
    state = run_loop(config, tensors, optimizer, step_fn, after_step=after_step if buffers else None,
                     lr_fn=lambda s: projector_lr(s, steps, lr, lr_rampup, lr_rampdown))
    for b in buffers.values():
        b.requires_grad_(False)
    ws = ws_of(w_opt.detach()).clone()
    metrics = evaluate(G, ws, target, loss, synthesis_kwargs)
    return Result(mode, ws, state_delta(G, base_state),
                  {"projection": time.perf_counter() - t_start, "projection_optimization": state.seconds},
                  metrics, state.logs, {"mode": mode, "steps": steps, "lr": lr, "w_std": w_std,
                                        "perceptual": loss.perceptual_name, "views": len(cams),
                                        "view_weights": None if weights is None else weights.tolist(),
                                        "w_avg_weight": w_avg_weight})


def evaluate(G, ws: torch.Tensor, target: Target, loss: ImageLoss | None = None,
             synthesis_kwargs: dict | None = None) -> dict:
    """Input-view metrics: psnr (dB, [-1, 1] images), mse, and the loss's perceptual distance."""
    with torch.no_grad():
        cams = target.cameras
        out = synthesize(G, ws.expand(len(cams), -1, -1), cams, **(synthesis_kwargs or {}))["image"]
        images = target.images
        if images.shape[-2:] != out.shape[-2:]:
            images = F.interpolate(images, size=out.shape[-2:], mode="area")
        metrics = {"psnr": psnr(out, images), "mse": F.mse_loss(out, images).item()}
        if loss is not None and loss.perceptual_weight:
            metrics["perceptual"] = float(loss.perceptual_distance(out, images))
            metrics["perceptual_name"] = loss.perceptual_name
    return metrics
