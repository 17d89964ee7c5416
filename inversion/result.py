"""``Result`` of an inversion: ws, tuned parameters as a delta against the base generator,
per-stage timings, metrics. Saved as ``result.safetensors`` + ``result.json`` in a folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


@dataclass
class Result:
    """ws (B, num_ws, w_dim); delta: name -> (tuned - base) for every changed parameter or buffer
    of the generator's state dict (empty for pure projection); timings: stage -> seconds;
    metrics: name -> float; logs: per-step records; options: the method's arguments."""

    method: str
    ws: torch.Tensor
    delta: dict[str, torch.Tensor] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    logs: list = field(default_factory=list)
    options: dict = field(default_factory=dict)

    def apply_to(self, generator: torch.nn.Module) -> torch.nn.Module:
        """Add the delta to ``generator``'s state in place (it must be the base) and return it."""
        state = generator.state_dict()
        unknown = [k for k in self.delta if k not in state]
        if unknown:
            raise ValueError(f"generator lacks the delta's keys: {unknown[:5]}")
        with torch.no_grad():
            for k, d in self.delta.items():
                state[k].add_(d.to(state[k]))
        return generator

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"ws": self.ws.detach().cpu().contiguous()}
        tensors.update({f"delta.{k}": v.detach().cpu().contiguous() for k, v in self.delta.items()})
        save_file(tensors, str(folder / "result.safetensors"))
        meta = {"method": self.method, "timings": self.timings, "metrics": self.metrics,
                "options": _jsonable(self.options), "logs": self.logs}
        (folder / "result.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Result":
        folder = Path(folder)
        tensors = load_file(str(folder / "result.safetensors"))
        meta = json.loads((folder / "result.json").read_text())
        delta = {k[len("delta."):]: v for k, v in tensors.items() if k.startswith("delta.")}
        return cls(meta["method"], tensors["ws"], delta, meta["timings"], meta["metrics"],
                   meta.get("logs", []), meta.get("options", {}))


def state_delta(tuned: torch.nn.Module, base_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """name -> tuned - base for the floating entries that changed."""
    out = {}
    for k, v in tuned.state_dict().items():
        if k in base_state and v.is_floating_point() and not torch.equal(v, base_state[k]):
            out[k] = (v - base_state[k]).detach().cpu()
    return out


def add_deltas(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The delta of two stages run one after the other (name -> sum)."""
    out = dict(first)
    for k, v in second.items():
        out[k] = out[k] + v if k in out else v
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return repr(obj)
