"""Incremental inversion over a frame stream (docs/algorithms.md section 6, InvertAvatar's structure,
optimization-based).

``Session(G)`` keeps a running state: a W+ latent aggregate with a per-layer confidence, and the
generator's tuned weights. ``add_frame(image, camera)``:

1. the first frame is projected from w_avg (``first_steps``, projector schedule): the pivot;
2. every later frame warm-starts from the aggregate and refines a latent for ``frame_steps`` on a
   *replay batch*: the new frame plus up to ``replay`` earlier frames spread over the stream;
3. the per-layer **confidence** of that estimate is the mean squared gradient of the loss with
   respect to each latent layer during the refinement (a diagonal Fisher information: layers this
   frame constrains get high confidence), and the aggregate is the confidence-weighted running mean
   w_l <- (C_l w_l + c_l w_new,l) / (C_l + c_l), C_l <- C_l + c_l (the recurrent state);
4. the generator is tuned (PTI-like, Adam ``tune_lr``, ``tune_subset``) for ``tune_steps`` on the
   replay batch at the aggregate, warm-started from its previous weights.

So a new frame costs ``frame_steps + tune_steps`` small steps instead of a whole multi-view run.
``render(camera)`` renders the current state; ``state_dict`` / ``load_state_dict`` save and
resume a session (frames included).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from .loop import LoopConfig, atomic_save, run_loop
from .losses import ImageLoss
from .projection import project
from .protocol import trainable_parameters
from .result import Result, state_delta
from .target import Target


class Session:
    """Incremental inversion state for generator ``G`` (tuned in place when tune_steps > 0).

    first_steps (100): projection steps of the first frame; frame_steps (20): latent refinement
    steps per later frame (Adam, ``lr``); tune_steps (10) at ``tune_lr`` (3e-4) on ``tune_subset``
    ('all' or a ``G.params_to_tune`` group; 0 steps: latents only); replay (4): earlier frames
    revisited with each new one; loss: an ``ImageLoss`` (default 0.1 x MSE + LPIPS-VGG)."""

    def __init__(self, G, *, first_steps: int = 100, frame_steps: int = 20, lr: float = 0.02,
                 tune_steps: int = 10, tune_lr: float = 3e-4, tune_subset: str = "all", replay: int = 4,
                 loss: ImageLoss | None = None, synthesis_kwargs: dict | None = None, seed: int = 0,
                 progress: bool = False):
        for name, v in (("first_steps", first_steps), ("frame_steps", frame_steps), ("tune_steps", tune_steps),
                        ("replay", replay)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        self.G, self.loss = G, loss or ImageLoss(0.1, 1.0, "lpips-vgg")
        self.first_steps, self.frame_steps, self.lr = first_steps, frame_steps, lr
        self.tune_steps, self.tune_lr, self.tune_subset, self.replay = tune_steps, tune_lr, tune_subset, replay
        self.synthesis_kwargs, self.seed, self.progress = dict(synthesis_kwargs or {}), seed, progress
        self.base_state = {k: v.clone() for k, v in G.state_dict().items()}
        self.images: list[torch.Tensor] = []   # (3, H, W) each
        self.cameras: list[torch.Tensor] = []  # (25,) each
        self.ws: torch.Tensor | None = None    # (1, num_ws, w_dim) aggregate
        self.confidence: torch.Tensor | None = None  # (num_ws,)
        self.history: list[dict] = []
        self._tune_state = None  # the tuning optimizer's state, carried across frames

    def __len__(self) -> int:
        return len(self.images)

    def replay_indices(self) -> list[int]:
        """The newest frame plus up to ``replay`` earlier ones, evenly spread over the stream."""
        n = len(self.images)
        earlier = list(range(n - 1))
        if len(earlier) > self.replay:
            step = len(earlier) / self.replay
            earlier = [earlier[int(i * step)] for i in range(self.replay)]
        return earlier + [n - 1]

    def add_frame(self, image: torch.Tensor, camera: torch.Tensor) -> dict:
        """image (3, H, W) in [-1, 1], camera (25,) -> {'frame', 'seconds', 'loss', 'confidence'}."""
        image, camera = image.reshape(-1, *image.shape[-2:]), camera.reshape(25).float()
        if image.shape[0] != 3:
            raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
        t0 = time.perf_counter()
        self.images.append(image.float())
        self.cameras.append(camera)
        idx = self.replay_indices()
        batch = Target(torch.stack([self.images[i] for i in idx]), torch.stack([self.cameras[i] for i in idx]))
        frame_seed = self.seed * 1000 + len(self)
        if self.ws is None:
            r = project(self.G, batch, mode="wplus", steps=self.first_steps, lr=0.1, loss=self.loss,
                        synthesis_kwargs=self.synthesis_kwargs, seed=frame_seed,
                        loop=LoopConfig(steps=0, progress=self.progress))
            w_new, conf = r.ws, torch.ones(self.G.num_ws, device=r.ws.device)
            self.ws, self.confidence = w_new.clone(), conf
            loss_value = r.logs[-1]["loss"] if r.logs else float("nan")
        else:
            w_new, conf, loss_value = self._refine(batch, frame_seed)
            c = conf.view(1, -1, 1)
            total = self.confidence.view(1, -1, 1) + c
            self.ws = (self.confidence.view(1, -1, 1) * self.ws + c * w_new) / total.clamp_min(1e-12)
            self.confidence = total.view(-1)
        if self.tune_steps:
            self._tune(batch, frame_seed)
        record = {"frame": len(self), "seconds": time.perf_counter() - t0, "loss": loss_value,
                  "confidence": conf.tolist()}
        self.history.append(record)
        return record

    def _refine(self, batch: Target, seed: int):
        """Warm-started latent refinement on the replay batch -> (w, per-layer confidence, loss)."""
        G = self.G
        G.requires_grad_(False)
        w = self.ws.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([w], lr=self.lr)
        fisher = torch.zeros(G.num_ws, device=w.device)
        n = len(batch)

        def step_fn(step):
            out = G.synthesis(w.expand(n, -1, -1), batch.cameras, **self.synthesis_kwargs)["image"]
            return self.loss(out, batch.images)

        def after_step(step):
            fisher.add_(w.grad.detach().square().mean(-1)[0])

        state = run_loop(LoopConfig(steps=self.frame_steps, seed=seed, progress=self.progress,
                                    description="frame"), {"w": w}, optimizer, step_fn, after_step=after_step)
        conf = fisher / max(1, self.frame_steps)
        conf = conf / conf.mean().clamp_min(1e-20)  # relative: the mean layer of a frame counts 1
        return w.detach(), conf, state.logs[-1]["loss"] if state.logs else float("nan")

    def _tune(self, batch: Target, seed: int) -> None:
        G, ws, n = self.G, self.ws.detach(), len(batch)
        params, tensors = trainable_parameters(G, self.tune_subset)
        optimizer = torch.optim.Adam(params, lr=self.tune_lr)
        if self._tune_state is not None:
            optimizer.load_state_dict(self._tune_state)

        def step_fn(step):
            out = G.synthesis(ws.expand(n, -1, -1), batch.cameras, **self.synthesis_kwargs)["image"]
            return self.loss(out, batch.images)

        run_loop(LoopConfig(steps=self.tune_steps, seed=seed + 1, progress=self.progress, description="tune"),
                 tensors, optimizer, step_fn)
        self._tune_state = optimizer.state_dict()
        G.requires_grad_(False)

    def render(self, camera: torch.Tensor, **synthesis_kwargs) -> dict:
        """camera (25,) or (B, 25) -> the generator's synthesis output for the current state."""
        if self.ws is None:
            raise ValueError("render: add a frame first")
        c = camera.reshape(-1, 25)
        with torch.no_grad():
            return self.G.synthesis(self.ws.expand(len(c), -1, -1), c, **{**self.synthesis_kwargs,
                                                                             **synthesis_kwargs})

    def result(self) -> Result:
        return Result("incremental", self.ws.detach().clone(), state_delta(self.G, self.base_state),
                      {"frames": sum(h["seconds"] for h in self.history)}, {"frames": len(self)},
                      self.history, {"first_steps": self.first_steps, "frame_steps": self.frame_steps,
                                     "tune_steps": self.tune_steps, "replay": self.replay})

    def state_dict(self) -> dict:
        """Everything needed to resume: frames, aggregate, confidence, tuned weights' delta, history."""
        return {"images": torch.stack(self.images) if self.images else None,
                "cameras": torch.stack(self.cameras) if self.cameras else None,
                "ws": self.ws, "confidence": self.confidence, "history": list(self.history),
                "delta": state_delta(self.G, self.base_state), "tune_state": self._tune_state}

    def load_state_dict(self, state: dict) -> None:
        """Resume (the generator must be the session's base generator)."""
        self.images = list(state["images"]) if state["images"] is not None else []
        self.cameras = list(state["cameras"]) if state["cameras"] is not None else []
        self.ws, self.confidence = state["ws"], state["confidence"]
        self.history, self._tune_state = list(state["history"]), state["tune_state"]
        with torch.no_grad():
            current = self.G.state_dict()
            for k, v in self.base_state.items():
                current[k].copy_(v + state["delta"][k].to(v) if k in state["delta"] else v)


def run_session(G, target: Target, *, state_path: str | os.PathLike | None = None,
                **session_options) -> Result:
    """Feed ``target``'s frames in order to a ``Session(G, **session_options)``. state_path: the
    session's state, written atomically after every frame and read back to resume after the
    frames already added."""
    session = Session(G, **session_options)
    if state_path is not None and Path(state_path).exists():
        session.load_state_dict(torch.load(state_path, weights_only=False))
    for image, camera in list(zip(target.images, target.cameras))[len(session):]:
        session.add_frame(image, camera)
        if state_path is not None:
            atomic_save(session.state_dict(), state_path)
    return session.result()
