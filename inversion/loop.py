"""The optimization loop shared by every method: tqdm progress, per-step structured logs,
learning-rate schedule, early stopping, periodic resumable checkpoints.

Each step's randomness comes from ``torch.manual_seed(seed + step)`` inside a forked RNG, so a run
resumed from a checkpoint draws the same numbers as one that never stopped and reaches the same
result.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm


@dataclass
class LoopConfig:
    """steps: total optimizer steps. checkpoint_path: a ``.pt`` file written every
    ``checkpoint_every`` steps (and read back to resume when it exists). stop_after: end the run
    early after this step (simulates a kill; the checkpoint lets a later call resume).
    log_path: JSON-lines file of the per-step logs. seed: base of the per-step seeds."""

    steps: int
    seed: int = 0
    checkpoint_path: str | os.PathLike | None = None
    checkpoint_every: int = 50
    stop_after: int | None = None
    log_path: str | os.PathLike | None = None
    progress: bool = True
    description: str = "invert"


@dataclass
class LoopState:
    step: int = 0
    logs: list = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0      # wall time of the steps, over every (resumed) run
    cpu_seconds: float = 0.0  # process CPU time of the steps (all threads), likewise


def run_loop(config: LoopConfig, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
             step_fn: Callable[[int], tuple[torch.Tensor, dict]], *,
             lr_fn: Callable[[int], float] | None = None,
             after_step: Callable[[int], None] | None = None,
             stop_fn: Callable[[dict], bool] | None = None,
             grad_clip: float | None = None) -> LoopState:
    """Optimize ``tensors`` (name -> tensor, all saved in checkpoints) with ``optimizer``.

    step_fn(step) -> (loss, metrics): computes the loss (backward is done here). lr_fn(step) sets
    every group's lr. after_step(step): e.g. an EMA update (its tensors belong in ``tensors``).
    stop_fn(metrics) -> True stops early (the step's metrics include 'loss').
    """
    if config.steps < 0:
        raise ValueError(f"steps must be >= 0, got {config.steps}")
    state = LoopState()
    ckpt = Path(config.checkpoint_path) if config.checkpoint_path else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        with torch.no_grad():
            for name, t in tensors.items():
                t.copy_(saved["tensors"][name])
        optimizer.load_state_dict(saved["optimizer"])
        state.step, state.logs = saved["step"], saved["logs"]
        state.stopped_early, state.seconds = saved["stopped_early"], saved["seconds"]
        state.cpu_seconds = saved.get("cpu_seconds", 0.0)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    bar = tqdm(total=config.steps, initial=state.step, desc=config.description,
               disable=not config.progress, leave=False)
    if config.log_path:
        Path(config.log_path).parent.mkdir(parents=True, exist_ok=True)
    log_file = open(config.log_path, "a") if config.log_path else None
    try:
        while state.step < config.steps and not state.stopped_early:
            step, t0, c0 = state.step, time.perf_counter(), time.process_time()
            if lr_fn is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_fn(step)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed * 1_000_003 + step)
                optimizer.zero_grad(set_to_none=True)
                loss, metrics = step_fn(step)
                loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            if after_step is not None:
                after_step(step)
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            record = {"step": step, "loss": float(loss.detach()), "seconds": seconds,
                      "lr": optimizer.param_groups[0]["lr"], **metrics}
            state.logs.append(record)
            state.seconds += seconds
            state.cpu_seconds += cpu_seconds
            state.step += 1
            if log_file:
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()  # a killed run's log keeps every step it made
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            if stop_fn is not None and stop_fn(record):
                state.stopped_early = True
            last = state.step == config.steps or state.stopped_early
            if ckpt is not None and (state.step % config.checkpoint_every == 0 or last
                                     or state.step == config.stop_after):
                save_loop_checkpoint(ckpt, state, tensors, optimizer)
            if config.stop_after is not None and state.step >= config.stop_after:
                break
    finally:
        bar.close()
        if log_file:
            log_file.close()
    return state


def atomic_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a kill never leaves a
    half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_loop_checkpoint(path: Path, state: LoopState, tensors: dict, optimizer) -> None:
    """Atomically write the loop's resumable state."""
    atomic_save({"step": state.step, "logs": state.logs, "stopped_early": state.stopped_early,
                 "seconds": state.seconds, "cpu_seconds": state.cpu_seconds, "optimizer": optimizer.state_dict(),
                 "tensors": {k: v.detach().cpu() for k, v in tensors.items()}}, path)


def projector_lr(step: int, steps: int, peak: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """StyleGAN2-ADA projector schedule: linear ramp-up over the first ``rampup`` fraction, cosine
    ramp-down over the last ``rampdown`` fraction."""
    import math
    t = step / max(1, steps)
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return peak * ramp * min(1.0, t / rampup) if rampup > 0 else peak * ramp
