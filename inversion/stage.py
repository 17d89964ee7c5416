"""The one stage runner: what every optimization stage of every method does around its own loss.

A stage is a config dataclass (the method's hyper-parameters, frozen; recorded as the Result's
options) and a ``plan`` function that, given the generator, the target and the stage's loss,
builds what is specific to it (the tensors to optimize, the optimizer, the step function and
its hooks, and how to read the latent back). ``run_stage`` does the rest, the same way for
projection, PTI, NeRFInvertor and multi-latent inversion: timer, default loss from the config's
weights, the generator's base state, the loop (checkpoints, logs, progress, resume) with a copy
of the caller's ``LoopConfig`` (never changed in place), the input-view evaluation and the delta
of the generator against its base state.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .loop import LoopConfig, LoopState, run_loop
from .losses import ImageLoss
from .evaluation import evaluate
from .result import Result, state_delta
from .target import Target


def configure(config_type: type, config, overrides: dict):
    """``config`` (or the type's defaults) with ``overrides`` replaced: a new frozen config.
    ValueError naming the unknown keywords and the known ones."""
    base = config_type() if config is None else config
    if not isinstance(base, config_type):
        raise ValueError(f"config must be a {config_type.__name__}, got {type(base).__name__}")
    known = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{config_type.__name__}: unknown options {unknown}; known: {sorted(known)}")
    return dataclasses.replace(base, **overrides)


@dataclass
class StageContext:
    """What a plan function gets besides the generator and the target."""

    loss: ImageLoss
    synthesis_kwargs: dict
    seed: int


@dataclass
class StagePlan:
    """What is specific to one stage. steps: optimizer steps; tensors: name -> tensor saved in
    checkpoints (the optimized ones and e.g. EMAs); latent(state): the stage's ws after the loop
    (the evaluation renders them); finish(state): e.g. copy an EMA into the generator, returns
    extra metrics and options for the Result."""

    steps: int
    tensors: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    step_fn: Callable[[int], tuple[torch.Tensor, dict]]
    latent: Callable[[LoopState], torch.Tensor]
    lr_fn: Callable[[int], float] | None = None
    after_step: Callable[[int], None] | None = None
    stop_fn: Callable[[dict], bool] | None = None
    grad_clip: float | None = None
    finish: Callable[[LoopState], tuple[dict, dict]] = lambda state: ({}, {})
    evaluation_target: Target | None = None
    extra_timings: dict = field(default_factory=dict)


def default_loss(config) -> ImageLoss:
    """The loss of a config with ``mse_weight``, ``perceptual_weight`` and ``perceptual``."""
    return ImageLoss(config.mse_weight, config.perceptual_weight, config.perceptual)


def run_stage(name: str, G, target: Target, config, plan: Callable[..., StagePlan], *,
              loss: ImageLoss | None = None, synthesis_kwargs: dict | None = None,
              loop: LoopConfig | None = None, seed: int = 0, method: str | None = None,
              description: str | None = None) -> Result:
    """Run one stage and return its Result(method or name, ws, delta, timings {name: total
    seconds, name_optimization: the steps' wall seconds, name_optimization_cpu: their process CPU
    seconds; both add up over resumed runs}, input-view metrics, logs, options = the config's
    fields + the loss's perceptual name + the plan's extra options).

    plan(G, target, config, context: StageContext) -> StagePlan. loop: checkpointing / progress
    settings; its steps, seed and description are replaced (on a copy) by the stage's."""
    t_start = time.perf_counter()
    loss = loss or default_loss(config)
    context = StageContext(loss, dict(synthesis_kwargs or {}), seed)
    base_state = {k: v.clone() for k, v in G.state_dict().items()}
    p = plan(G, target, config, context)
    loop_config = dataclasses.replace(loop or LoopConfig(steps=0), steps=p.steps, seed=seed,
                                      description=description or name)
    state = run_loop(loop_config, p.tensors, p.optimizer, p.step_fn, lr_fn=p.lr_fn,
                     after_step=p.after_step, stop_fn=p.stop_fn, grad_clip=p.grad_clip)
    G.requires_grad_(False)
    for t in p.tensors.values():
        t.requires_grad_(False)
    extra_metrics, extra_options = p.finish(state)
    ws = p.latent(state).detach().clone()
    metrics = evaluate(G, ws, p.evaluation_target or target, loss, context.synthesis_kwargs)
    metrics.update(extra_metrics)
    options = {**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)}, "perceptual": loss.perceptual_name, **extra_options}
    timings = {**p.extra_timings, name: time.perf_counter() - t_start,
               f"{name}_optimization": state.seconds, f"{name}_optimization_cpu": state.cpu_seconds}
    return Result(method or name, ws, state_delta(G, base_state), timings, metrics, state.logs, options)
