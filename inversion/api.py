"""``inversion.run(method, generator, target, **options)``: the methods by name."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .loop import LoopConfig
from .incremental import Session
from .multilatent import multilatent_inversion, multiview_inversion
from .nerfinvertor import nerfinvertor_tuning
from .projection import project
from .pti import pivotal_tuning
from .result import Result

METHODS = ("w", "wplus", "pti", "nerfinvertor", "multiview", "multilatent", "incremental")


def _loop(checkpoint_dir, stage: str, every: int, stop_after, progress: bool):
    if checkpoint_dir is None and stop_after is None:
        return LoopConfig(steps=0, progress=progress)
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{stage}.pt"
    return LoopConfig(steps=0, checkpoint_path=path, checkpoint_every=every, stop_after=stop_after,
                      progress=progress,
                      log_path=None if checkpoint_dir is None else Path(checkpoint_dir) / f"{stage}.jsonl")


def run(method: str, generator, target, *, projection: str = "w", projection_steps: int = 500,
        tuning_steps: int | None = None, projection_options: dict | None = None,
        tuning_options: dict | None = None, loss=None, synthesis_kwargs: dict | None = None,
        checkpoint_dir=None, checkpoint_every: int = 50, stop_after: int | None = None,
        progress: bool = True, seed: int = 0) -> Result:
    """Invert ``target`` with ``generator`` (tuned in place for 'pti' / 'nerfinvertor').

    method: 'w', 'wplus' (projection only), 'pti', 'nerfinvertor' (projection into ``projection``
    space, then fine-tuning); with several views: 'multiview' (one latent for all views, then a
    tuning stage when ``tuning_options['method']`` is 'pti' or 'nerfinvertor'), 'multilatent'
    (one latent per target frame, ``tuning_options`` go to ``multilatent_inversion``; the
    multi-view stage uses ``projection_steps``), 'incremental' (the frames fed one by one to an
    ``incremental.Session``; ``tuning_options`` are its arguments). projection_steps (500) / tuning_steps (method default: PTI 350,
    NeRFInvertor 1000). projection_options / tuning_options: keyword arguments of ``project`` /
    ``pivotal_tuning`` / ``nerfinvertor_tuning`` (weights, lr, ...). loss: an ``ImageLoss`` shared
    by both stages. checkpoint_dir: resumable checkpoints + JSON-lines logs per stage;
    stop_after: stop the current stage after that many steps (simulated kill, for resuming).
    The Result's delta sums both stages' changes against the input generator.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    common = {"synthesis_kwargs": synthesis_kwargs, "seed": seed}
    if loss is not None:
        common["loss"] = loss
    if method == "multilatent":
        kwargs = dict(tuning_options or {})
        if tuning_steps is not None:
            kwargs["iterations"] = tuning_steps
        return multilatent_inversion(
            generator, target, multiview_steps=projection_steps,
            loop=_loop(checkpoint_dir, "multilatent", checkpoint_every, stop_after, progress), **common, **kwargs)
    if method == "incremental":
        kwargs = dict(tuning_options or {})
        session = Session(generator, first_steps=projection_steps, progress=progress, seed=seed,
                          synthesis_kwargs=synthesis_kwargs, **({"loss": loss} if loss is not None else {}),
                          **kwargs)
        state_path = None if checkpoint_dir is None else Path(checkpoint_dir) / "incremental.pt"
        if state_path is not None and state_path.exists():  # resume after the frames already added
            session.load_state_dict(torch.load(state_path, weights_only=False))
        for image, camera in list(zip(target.images, target.cameras))[len(session):]:
            session.add_frame(image, camera)
            if state_path is not None:
                state_path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(session.state_dict(), state_path.with_suffix(".tmp"))
                os.replace(state_path.with_suffix(".tmp"), state_path)
        return session.result()
    mode = method if method in ("w", "wplus") else projection
    stage_loop = _loop(checkpoint_dir, "projection", checkpoint_every, stop_after, progress)
    if method == "multiview":
        proj = multiview_inversion(generator, target, steps=projection_steps, loop=stage_loop, **common,
                                   **(projection_options or {}))
        tuning_options = dict(tuning_options or {})
        method_after = tuning_options.pop("method", None)
        if method_after is None:
            return proj
        if method_after not in ("pti", "nerfinvertor"):
            raise ValueError(f"tuning_options['method'] must be 'pti' or 'nerfinvertor', got {method_after!r}")
    else:
        proj = project(generator, target, mode=mode, steps=projection_steps, loop=stage_loop,
                       **common, **(projection_options or {}))
        method_after = method
    if method in ("w", "wplus"):
        return proj
    if stop_after is not None and len(proj.logs) < projection_steps:
        return proj
    tune = pivotal_tuning if method_after == "pti" else nerfinvertor_tuning
    kwargs = dict(tuning_options or {})
    if tuning_steps is not None:
        kwargs["steps"] = tuning_steps
    tuned = tune(generator, target, proj.ws, loop=_loop(checkpoint_dir, "tuning", checkpoint_every,
                                                        stop_after, progress), **common, **kwargs)
    delta = dict(proj.delta)
    for k, v in tuned.delta.items():
        delta[k] = delta[k] + v if k in delta else v
    return Result(method, tuned.ws, delta, {**proj.timings, **tuned.timings},
                  {**{f"projection_{k}": v for k, v in proj.metrics.items()}, **tuned.metrics},
                  proj.logs + tuned.logs, {"projection": proj.options, "tuning": tuned.options})
