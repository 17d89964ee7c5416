"""EG3D's rendering options, parsed and checked once per render (``parse_options``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import _checks


@dataclass
class RenderOptions:
    ray_start: object  # float or (N, R, 1) tensor
    ray_end: object
    auto_limits: bool
    box_warp: float
    depth_resolution: int
    n_importance: int
    disparity_space: bool
    white_back: bool
    density_noise: float
    deterministic: bool
    jitter: torch.Tensor | None
    u: torch.Tensor | None
    generator: torch.Generator | None
    t_min: float
    alpha_min: float
    return_samples: bool
    max_memory_bytes: float
    checkpoint: bool


def option_number(options: dict, key: str, default=None, *, low=None, high=None, integer=False):
    """options[key] (or ``default`` when absent or None), checked to be a finite number in
    [low, high); ValueError naming the key otherwise."""
    value = options.get(key)
    value = default if value is None else value
    if value is None:
        raise ValueError(f"rendering_options['{key}'] is required")
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) \
            or (low is not None and value < low) or (high is not None and value >= high):
        rng = f" in [{low}, {high})" if high is not None else (f" >= {low}" if low is not None else "")
        what = "an int" if integer else "a number"
        raise ValueError(f"rendering_options['{key}'] must be {what}{rng}, got {value!r}")
    return value


def parse_options(options, N: int, R: int, default_memory: float) -> RenderOptions:
    if not isinstance(options, dict):
        raise ValueError(f"rendering_options must be a dict, got {type(options).__name__}")
    clamp_mode = options.get("clamp_mode", "softplus")
    if clamp_mode != "softplus":
        raise ValueError(f"rendering_options['clamp_mode'] must be 'softplus' (the only mode EG3D's "
                         f"released models use), got {clamp_mode!r}")
    start, end = options.get("ray_start"), options.get("ray_end")
    auto = start == "auto" and end == "auto"
    if not auto:
        for key in ("ray_start", "ray_end"):
            option_number(options, key)
        if not start < end:
            raise ValueError(f"rendering_options['ray_start'] must be less than ['ray_end'] (or "
                             f"both 'auto'), got {start!r}, {end!r}")
        if options.get("disparity_space_sampling", False) and start <= 0:
            raise ValueError(f"rendering_options['ray_start'] must be positive with "
                             f"disparity_space_sampling, got {start!r}")
    box_warp = option_number(options, "box_warp", low=0)
    if box_warp <= 0:
        raise ValueError(f"rendering_options['box_warp'] must be positive, got {box_warp!r}")
    n_imp = option_number(options, "depth_resolution_importance", 0, low=0, integer=True)
    D = option_number(options, "depth_resolution", low=4 if n_imp > 0 else 2, integer=True)
    jitter = options.get("stratified_jitter")
    if jitter is not None:
        _checks.check_tensor(jitter, "rendering_options['stratified_jitter']",
                             f"(N, R, D, 1) = ({N}, {R}, {D}, 1)", dim=4, sizes={0: N, 1: R, 2: D, 3: 1})
    u = options.get("importance_u")
    if u is not None:
        name = "rendering_options['importance_u']"
        _checks.check_tensor(u, name, f"(N*R, n) or (N, R, n) = ({N * R}, {n_imp})",
                             sizes={-1: n_imp})
        if u.dim() == 2 and u.shape[0] == N * R:
            u = u.reshape(N, R, n_imp)
        elif u.shape != (N, R, n_imp):
            raise ValueError(f"{name} must have shape (N*R, n) or (N, R, n) = ({N * R}, {n_imp}) "
                             f"or ({N}, {R}, {n_imp}), got {tuple(u.shape)}")
    generator = options.get("generator")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"rendering_options['generator'] must be a torch.Generator, got "
                         f"{type(generator).__name__}")
    return RenderOptions(
        ray_start=start, ray_end=end, auto_limits=auto, box_warp=float(box_warp),
        depth_resolution=D, n_importance=n_imp,
        disparity_space=bool(options.get("disparity_space_sampling", False)),
        white_back=bool(options.get("white_back", False)),
        density_noise=float(option_number(options, "density_noise", 0.0, low=0)),
        deterministic=bool(options.get("deterministic", False)),
        jitter=jitter, u=u, generator=generator,
        t_min=float(option_number(options, "t_min", 0.0, low=0, high=1)),
        alpha_min=float(option_number(options, "alpha_min", 0.0, low=0, high=1)),
        return_samples=bool(options.get("return_samples", False)),
        max_memory_bytes=option_number(options, "max_memory_bytes", default_memory, low=1),
        checkpoint=bool(options.get("checkpoint", False)),
    )
