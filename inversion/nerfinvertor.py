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

import time

import torch

from .loop import LoopConfig, run_loop
from .losses import ImageLoss
from .neighborhood import calibrate_radius, neighbor_latents, neighborhood_batch, random_cameras
from .projection import evaluate
from .protocol import synthesize, trainable_parameters
from .result import Result, state_delta
from .target import Target


def nerfinvertor_tuning(G, target: Target, w_pivot: torch.Tensor, *, steps: int = 1000,
                        lr: float = 2e-5, betas=(0.0, 0.9), grad_clip: float = 1.0,
                        mse_weight: float = 1.0, perceptual_weight: float = 1.0,
                        perceptual="lpips-vgg", loss: ImageLoss | None = None,
                        explicit_weight: float = 10.0, density_weight: float = 0.0,
                        depth_weight: float = 0.0, implicit_weight: float = 1.0,
                        mask_weight: float = 10.0, masked: bool = False,
                        mask_threshold: float = 0.5, num_neighbors: int = 1, num_cameras: int = 1,
                        neighbor_alpha: float | None = None, neighbor_fraction: float = 0.5,
                        explicit_resolution: int = 128, explicit_samples: int = 48,
                        implicit_every: int = 1, ema_decay: float = 0.999,
                        max_memory_bytes: float = 256 * 2 ** 20, subset: str = "all",
                        synthesis_kwargs: dict | None = None, loop: LoopConfig | None = None,
                        seed: int = 0) -> Result:
    """Tune ``G`` in place (its final weights are the EMA when ema_decay > 0).

    w_pivot (1, num_ws, w_dim). explicit_weight (10), density_weight (0), depth_weight (0):
    explicit terms; implicit_weight (1) scales MSE + perceptual between neighbour images of G and
    G0; mask_weight (10): background opacity when ``target.masks`` is given or ``masked``.
    masked (False): the masked variants above, foreground = G0 opacity > mask_threshold (0.5).
    num_neighbors K and
    num_cameras V per step (1, 1 as published). neighbor_alpha: W-space radius (None: calibrated by
    ``calibrate_radius`` with ``neighbor_fraction``; reported in metrics). explicit_resolution (128)
    and explicit_samples: rays per side and samples per ray of the explicit term.
    Returns Result('nerfinvertor', ws, delta, timings, metrics incl. 'neighbor_alpha').
    """
    t_start = time.perf_counter()
    loss = loss or ImageLoss(mse_weight, perceptual_weight, perceptual)
    base_state = {k: v.clone() for k, v in G.state_dict().items()}
    G0 = G.clone()
    cams, images = target.cameras, target.images
    if neighbor_alpha is None:
        neighbor_alpha = calibrate_radius(G0, cams[:1], fraction=neighbor_fraction, seed=seed)
    params, tensors = trainable_parameters(G, subset)
    ema = {f"ema.{n}": p.detach().clone() for n, p in tensors.items()} if ema_decay > 0 else {}
    optimizer = torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    synthesis_kwargs = dict(synthesis_kwargs or {})
    ws = w_pivot.detach()
    masks = target.masks
    if masks is None and masked:  # the input view's foreground from G0 at the pivot
        with torch.no_grad():
            out0 = synthesize(G0, ws.expand(len(cams), -1, -1), cams, **synthesis_kwargs)
        masks = _opacity_mask(out0, images.shape[-2:], mask_threshold)

    def step_fn(step):
        out = synthesize(G, ws.expand(len(cams), -1, -1), cams, **synthesis_kwargs)
        total, terms = loss(out["image"], images)
        if masks is not None and mask_weight and "weights_sum" in out:
            opacity = out["weights_sum"].reshape(len(cams), 1, *out["image_depth"].shape[-2:])
            bg = 1 - torch.nn.functional.interpolate(masks, size=opacity.shape[-2:], mode="area")
            mask_term = (opacity * bg).sum() / bg.sum().clamp_min(1)
            total = total + mask_weight * mask_term
            terms["mask"] = mask_term.item()
        w_n = neighbor_latents(G0, ws, cams[:1], num_neighbors, neighbor_alpha)
        c_n = random_cameras(num_cameras, intrinsics=cams[0, 16:].view(3, 3), device=cams.device)
        if explicit_weight or density_weight or depth_weight:
            reg = neighborhood_batch(G, G0, w_n, c_n, resolution=explicit_resolution,
                                     n_samples=explicit_samples, max_memory_bytes=max_memory_bytes,
                                     masks="reference" if masked else None,
                                     mask_threshold=mask_threshold)
            total = total + explicit_weight * reg["weighted_colour"] + density_weight * reg["density"] \
                + depth_weight * reg["depth"] + mask_weight * reg["background_opacity"]
            terms.update(explicit=reg["weighted_colour"].item(), density=reg["density"].item(),
                         depth=reg["depth"].item())
            if masked:
                terms["neighbor_background_opacity"] = float(reg["background_opacity"].detach())
        if implicit_weight and step % implicit_every == 0:
            wk = w_n.repeat_interleave(num_cameras, 0)
            ck = c_n.repeat(num_neighbors, 1)
            img = synthesize(G, wk, ck, **synthesis_kwargs)["image"]
            with torch.no_grad():
                out0 = synthesize(G0, wk, ck, **synthesis_kwargs)
            ref = out0["image"]
            if masked:  # only G0's foreground pixels count: G's background is replaced by G0's
                m = _opacity_mask(out0, img.shape[-2:], mask_threshold)
                img = ref + m * (img - ref)
            imp, _ = loss(img, ref)
            total = total + implicit_weight * imp
            terms["implicit"] = imp.item()
        return total, terms

    def after_step(step):
        with torch.no_grad():
            for n, p in tensors.items():
                ema[f"ema.{n}"].lerp_(p.detach(), 1 - ema_decay)

    config = loop or LoopConfig(steps=steps)
    config.steps, config.seed, config.description = steps, seed, "nerfinvertor"
    state = run_loop(config, {**tensors, **ema}, optimizer, step_fn, grad_clip=grad_clip,
                     after_step=after_step if ema else None)
    G.requires_grad_(False)
    if ema:
        with torch.no_grad():
            for n, p in tensors.items():
                p.copy_(ema[f"ema.{n}"])
    metrics = evaluate(G, ws, target, loss, synthesis_kwargs)
    metrics["neighbor_alpha"] = float(neighbor_alpha)
    return Result("nerfinvertor", ws.clone(), state_delta(G, base_state),
                  {"nerfinvertor": time.perf_counter() - t_start,
                   "nerfinvertor_optimization": state.seconds}, metrics, state.logs,
                  {"steps": steps, "lr": lr, "betas": list(betas), "explicit_weight": explicit_weight,
                   "density_weight": density_weight, "depth_weight": depth_weight,
                   "implicit_weight": implicit_weight, "mask_weight": mask_weight,
                   "masked": masked, "mask_threshold": mask_threshold,
                   "num_neighbors": num_neighbors, "num_cameras": num_cameras,
                   "neighbor_alpha": float(neighbor_alpha), "ema_decay": ema_decay,
                   "perceptual": loss.perceptual_name})


def _opacity_mask(out: dict, size, threshold: float) -> torch.Tensor:
    """(B, 1, H, W) foreground in {0, 1} resized to ``size`` (bilinear, so edges are soft): the
    rendered accumulated opacity ``out['weights_sum']`` (at the neural rendering resolution) >
    threshold."""
    if "weights_sum" not in out:
        raise ValueError("masked=True needs a generator whose synthesis returns 'weights_sum' "
                         "(B, R, 1) (its accumulated opacity), or a target with masks")
    B = out["image"].shape[0]
    opacity = out["weights_sum"].reshape(B, 1, *out["image_depth"].shape[-2:])
    fg = (opacity > threshold).float()
    return torch.nn.functional.interpolate(fg, size=tuple(size), mode="bilinear", align_corners=False)
