"""PTI: pivotal tuning of the generator around the projected pivot w* (docs/algorithms.md section 2).

Adam lr 3e-4, at most 350 steps, MSE x 1 + LPIPS x 1, early stop when the perceptual distance
falls to 0.06 (a threshold set with LPIPS-AlexNet), optional locality regularization at a random
pose, all parameters by default or a subset through ``G.params_to_tune(subset)``.
"""

from __future__ import annotations

import time

import torch

from .loop import LoopConfig, run_loop
from .losses import ImageLoss
from .neighborhood import neighbor_latents, random_cameras
from .projection import evaluate
from .protocol import synthesize, trainable_parameters
from .result import Result, state_delta
from .target import Target


def pivotal_tuning(G, target: Target, w_pivot: torch.Tensor, *, steps: int = 350, lr: float = 3e-4,
                   mse_weight: float = 1.0, perceptual_weight: float = 1.0, perceptual="lpips-alex",
                   loss: ImageLoss | None = None, early_stop_lpips: float | None = 0.06,
                   locality_weight: float = 0.0, locality_alpha: float = 30.0,
                   locality_every: int = 1, subset: str = "all",
                   synthesis_kwargs: dict | None = None, loop: LoopConfig | None = None,
                   seed: int = 0) -> Result:
    """Tune ``G`` in place so that G(w_pivot) renders the target.

    w_pivot (1, num_ws, w_dim). locality_weight: weight of MSE + perceptual between G(w_r) and the
    frozen G0(w_r) at a random camera, w_r = w* + locality_alpha (w_z - w*)/||w_z - w*|| (PTI's 0.1
    when enabled; default off). subset: ``G.params_to_tune`` group ('all' = every parameter).
    early_stop_lpips: stop when the loss's perceptual distance <= this (None: never).
    Returns Result('pti', ws, delta of G's state vs the input G, timings, metrics).
    """
    t_start = time.perf_counter()
    loss = loss or ImageLoss(mse_weight, perceptual_weight, perceptual)
    base_state = {k: v.clone() for k, v in G.state_dict().items()}
    G0 = G.clone() if locality_weight else None
    params, tensors = trainable_parameters(G, subset)
    optimizer = torch.optim.Adam(params, lr=lr)
    synthesis_kwargs = dict(synthesis_kwargs or {})
    ws = w_pivot.detach()
    cams, images = target.cameras, target.images

    def step_fn(step):
        out = synthesize(G, ws.expand(len(cams), -1, -1), cams, **synthesis_kwargs)["image"]
        total, terms = loss(out, images)
        if G0 is not None and step % locality_every == 0:
            w_r = neighbor_latents(G, ws, cams[:1], 1, locality_alpha)
            c_r = random_cameras(1, intrinsics=cams[0, 16:].view(3, 3), device=cams.device)
            img = synthesize(G, w_r, c_r, **synthesis_kwargs)["image"]
            with torch.no_grad():
                ref = synthesize(G0, w_r, c_r, **synthesis_kwargs)["image"]
            loc, _ = loss(img, ref)
            total = total + locality_weight * loc
            terms["locality"] = loc.item()
        return total, terms

    stop = None
    if early_stop_lpips is not None and loss.perceptual_weight:
        stop = lambda record: record.get("perceptual", 1e9) <= early_stop_lpips
    config = loop or LoopConfig(steps=steps)
    config.steps, config.seed, config.description = steps, seed, "pti"
    state = run_loop(config, tensors, optimizer, step_fn, stop_fn=stop)
    G.requires_grad_(False)
    metrics = evaluate(G, ws, target, loss, synthesis_kwargs)
    metrics["steps_run"] = state.step
    return Result("pti", ws.clone(), state_delta(G, base_state),
                  {"pti": time.perf_counter() - t_start, "pti_optimization": state.seconds},
                  metrics, state.logs, {"steps": steps, "lr": lr, "subset": subset,
                                        "locality_weight": locality_weight, "perceptual": loss.perceptual_name,
                                        "early_stop_lpips": early_stop_lpips})
