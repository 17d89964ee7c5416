"""``inversion.run(method, generator, target, **options)``: the methods by name.

A method is a list of stages (``METHOD_STAGES``); ``run`` runs them in order, each with its own
resumable checkpoint and log under ``checkpoint_dir``, each stage starting from the previous
one's latent, and merges their Results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .incremental import run_session
from .loop import LoopConfig
from .multilatent import multilatent_inversion, multiview_inversion
from .nerfinvertor import nerfinvertor_tuning
from .projection import project
from .pti import pivotal_tuning
from .result import Result, add_deltas
from .target import Target

TUNING = {"pti": pivotal_tuning, "nerfinvertor": nerfinvertor_tuning}


@dataclass(frozen=True)
class RunOptions:
    """``run``'s arguments, as every stage sees them."""

    projection: str = "w"
    projection_steps: int = 500
    tuning_steps: int | None = None
    projection_options: dict | None = None
    tuning_options: dict | None = None
    loss: object = None
    synthesis_kwargs: dict | None = None
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int = 50
    stop_after: int | None = None
    progress: bool = True
    seed: int = 0

    def common(self) -> dict:
        out = {"synthesis_kwargs": self.synthesis_kwargs, "seed": self.seed}
        if self.loss is not None:
            out["loss"] = self.loss
        return out

    def loop(self, stage: str) -> LoopConfig:
        """The stage's loop settings: checkpoint ``stage.pt`` and log ``stage.jsonl``."""
        if self.checkpoint_dir is None:
            return LoopConfig(steps=0, stop_after=self.stop_after, progress=self.progress)
        folder = Path(self.checkpoint_dir)
        return LoopConfig(steps=0, checkpoint_path=folder / f"{stage}.pt", checkpoint_every=self.checkpoint_every,
                          stop_after=self.stop_after, progress=self.progress, log_path=folder / f"{stage}.jsonl")

    def tuning(self) -> dict:
        kwargs = dict(self.tuning_options or {})
        kwargs.pop("method", None)
        if self.tuning_steps is not None:
            kwargs["steps"] = self.tuning_steps
        return kwargs


@dataclass(frozen=True)
class Stage:
    """name: its checkpoint / log stem. run(G, target, previous Result or None, options) -> Result,
    or None when the stage does not apply (e.g. multi-view without a tuning method)."""

    name: str
    run: Callable[[object, Target, Result | None, RunOptions], Result | None]
    projection: bool = False  # a stage of ``projection_steps`` steps (a stopped one ends the run)


def _projection(mode: str | None) -> Stage:
    def run(G, target, previous, o: RunOptions):
        return project(G, target, mode=mode or o.projection, steps=o.projection_steps, loop=o.loop("projection"),
                       **o.common(), **(o.projection_options or {}))
    return Stage("projection", run, projection=True)


def _tuning(method: str) -> Stage:
    def run(G, target, previous, o: RunOptions):
        return TUNING[method](G, target, previous.ws, loop=o.loop("tuning"), **o.common(), **o.tuning())
    return Stage("tuning", run)


def _multiview(G, target, previous, o: RunOptions):
    return multiview_inversion(G, target, steps=o.projection_steps, loop=o.loop("projection"), **o.common(),
                               **(o.projection_options or {}))


def _multiview_tuning(G, target, previous, o: RunOptions):
    method = (o.tuning_options or {}).get("method")
    if method is None:
        return None
    if method not in TUNING:
        raise ValueError(f"tuning_options['method'] must be one of {sorted(TUNING)}, got {method!r}")
    return _tuning(method).run(G, target, previous, o)


def _multilatent(G, target, previous, o: RunOptions):
    kwargs = dict(o.tuning_options or {})
    if o.tuning_steps is not None:
        kwargs["iterations"] = o.tuning_steps
    return multilatent_inversion(G, target, multiview_steps=o.projection_steps, loop=o.loop("multilatent"),
                                 **o.common(), **kwargs)


def _incremental(G, target, previous, o: RunOptions):
    state = None if o.checkpoint_dir is None else Path(o.checkpoint_dir) / "incremental.pt"
    return run_session(G, target, state_path=state, first_steps=o.projection_steps, progress=o.progress,
                       **o.common(), **(o.tuning_options or {}))


METHOD_STAGES: dict[str, tuple[Stage, ...]] = {
    "w": (_projection("w"),),
    "wplus": (_projection("wplus"),),
    "pti": (_projection(None), _tuning("pti")),
    "nerfinvertor": (_projection(None), _tuning("nerfinvertor")),
    "multiview": (Stage("projection", _multiview, projection=True), Stage("tuning", _multiview_tuning)),
    "multilatent": (Stage("multilatent", _multilatent),),
    "incremental": (Stage("incremental", _incremental),),
}
METHODS = tuple(METHOD_STAGES)


def run(method: str, generator, target, **options) -> Result:
    """Invert ``target`` with ``generator`` (tuned in place for 'pti' / 'nerfinvertor').

    method: 'w', 'wplus' (projection only), 'pti', 'nerfinvertor' (projection into ``projection``
    space, then fine-tuning); with several views: 'multiview' (one latent for all views, then a
    tuning stage when ``tuning_options['method']`` is 'pti' or 'nerfinvertor'), 'multilatent'
    (one latent per target frame, ``tuning_options`` go to ``multilatent_inversion``; the
    multi-view stage uses ``projection_steps``), 'incremental' (the frames fed one by one to an
    ``incremental.Session``; ``tuning_options`` are its arguments).

    options (``RunOptions``): projection ('w'), projection_steps (500), tuning_steps (method
    default: PTI 350, NeRFInvertor 1000), projection_options / tuning_options (keyword options of
    ``project`` / ``pivotal_tuning`` / ``nerfinvertor_tuning``: weights, lr, ...), loss (an
    ``ImageLoss`` shared by all stages), synthesis_kwargs, checkpoint_dir (resumable checkpoints +
    JSON-lines logs per stage), checkpoint_every (50), stop_after (stop the current stage after
    that many steps: a simulated kill, for resuming), progress, seed.
    The Result's delta sums all stages' changes against the input generator.
    """
    if method not in METHOD_STAGES:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    known = set(RunOptions.__dataclass_fields__)
    if set(options) - known:
        raise ValueError(f"unknown options {sorted(set(options) - known)}; known: {sorted(known)}")
    o = RunOptions(**options)
    results: list[Result] = []
    for stage in METHOD_STAGES[method]:
        r = stage.run(generator, target, results[-1] if results else None, o)
        if r is None:
            continue
        results.append(r)
        if stage.projection and o.stop_after is not None and len(r.logs) < o.projection_steps:
            break  # stopped mid-stage: the next call resumes it
    return results[0] if len(results) == 1 else _merge(method, results)


def _merge(method: str, results: list[Result]) -> Result:
    """A projection stage followed by a tuning stage -> one Result."""
    first, last = results
    return Result(method, last.ws, add_deltas(first.delta, last.delta), {**first.timings, **last.timings},
                  {**{f"projection_{k}": v for k, v in first.metrics.items()}, **last.metrics},
                  first.logs + last.logs, {"projection": first.options, "tuning": last.options})

