"""PTI: pivotal tuning of the generator around the projected pivot w* (docs/algorithms.md section 2).

Adam lr 3e-4, at most 350 steps, MSE x 1 + LPIPS x 1, early stop when the perceptual distance
falls to 0.06 (a threshold set with LPIPS-AlexNet), optional locality regularization at a random
pose, all parameters by default or a subset through ``G.params_to_tune(subset)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .loop import LoopConfig
from .losses import ImageLoss
from .neighborhood import neighbor_latents, random_cameras
from .protocol import trainable_parameters
from .result import Result
from .stage import StagePlan, configure, run_stage
from .target import Target


@dataclass(frozen=True)
class PTIConfig:
    """steps (at most), lr; mse_weight / perceptual_weight / perceptual: the default loss;
    early_stop_lpips: stop when the loss's perceptual distance <= this (None: never);
    locality_weight: weight of MSE + perceptual between G(w_r) and the frozen G0(w_r) at a random
    camera every ``locality_every`` steps, w_r = w* + locality_alpha (w_z - w*)/||w_z - w*|| (PTI's
    0.1 when enabled; default off); subset: the ``G.params_to_tune`` group ('all')."""

    steps: int = 350
    lr: float = 3e-4
    mse_weight: float = 1.0
    perceptual_weight: float = 1.0
    perceptual: object = "lpips-alex"
    early_stop_lpips: float | None = 0.06
    locality_weight: float = 0.0
    locality_alpha: float = 30.0
    locality_every: int = 1
    subset: str = "all"


def pivotal_tuning(G, target: Target, w_pivot: torch.Tensor, config: PTIConfig | None = None, *,
                   loss: ImageLoss | None = None, synthesis_kwargs: dict | None = None,
                   loop: LoopConfig | None = None, seed: int = 0, **options) -> Result:
    """Tune ``G`` in place so that G(w_pivot) renders the target.

    w_pivot (1, num_ws, w_dim). config: a ``PTIConfig``; keyword ``options`` replace its fields.
    Returns Result('pti', ws, delta of G's state vs the input G, timings, metrics incl.
    'steps_run')."""
    cfg = configure(PTIConfig, config, options)
    return run_stage("pti", G, target, cfg, lambda *a: _plan(*a, w_pivot=w_pivot.detach()), loss=loss,
                     synthesis_kwargs=synthesis_kwargs, loop=loop, seed=seed)


def _plan(G, target: Target, cfg: PTIConfig, ctx, *, w_pivot: torch.Tensor) -> StagePlan:
    G0 = G.clone() if cfg.locality_weight else None
    params, tensors = trainable_parameters(G, cfg.subset)
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    ws, cams, images, loss, kw = w_pivot, target.cameras, target.images, ctx.loss, ctx.synthesis_kwargs

    def step_fn(step):
        out = G.synthesis(ws.expand(len(cams), -1, -1), cams, **kw)["image"]
        total, terms = loss(out, images)
        if G0 is not None and step % cfg.locality_every == 0:
            w_r = neighbor_latents(G, ws, cams[:1], 1, cfg.locality_alpha)
            c_r = random_cameras(1, G.metadata.geometry, intrinsics=cams[0, 16:].view(3, 3), device=cams.device)
            img = G.synthesis(w_r, c_r, **kw)["image"]
            with torch.no_grad():
                ref = G0.synthesis(w_r, c_r, **kw)["image"]
            loc, _ = loss(img, ref)
            total = total + cfg.locality_weight * loc
            terms["locality"] = loc.item()
        return total, terms

    stop = None
    if cfg.early_stop_lpips is not None and loss.perceptual_weight:
        stop = lambda record: record.get("perceptual", 1e9) <= cfg.early_stop_lpips
    return StagePlan(cfg.steps, tensors, optimizer, step_fn, latent=lambda state: ws, stop_fn=stop,
                     finish=lambda state: ({"steps_run": state.step}, {}))
