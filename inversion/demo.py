"""The main job out of the box: ``nerfgan-invert`` with no arguments.

Builds a procedural head from a fixed seed outside the default generator's training seeds, renders
it from one camera (the only input the inversion sees), inverts it with NeRFInvertor into the
embedded default generator, and scores the result against the exact ground truth on held-out
views. Writes into ``out`` (default ``nerfgan-demo/``):

- ``input.png`` (the target view), ``reconstruction.png`` (target | render), ``depth.png``;
- ``turntable.mp4`` (GIF without ffmpeg), ``novel_views.png`` (rows: ground truth, inversion,
  depth error; columns: yaw -45..45 degrees), ``depth/`` (PNG + .npy depth map per novel view);
- ``metrics.json`` (input view and held-out views: PSNR, SSIM, LPIPS when available, foreground
  depth MAE; timings), ``report.md``; ``result.safetensors`` + ``result.json`` (ws, tuned delta).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .api import run
from .data.heads import render_head, sample_head, yaw_cameras
from .evaluation import score_views
from .losses import load_lpips, LPIPSWeightsMissing, loss_with_fallback
from .outputs import to_uint8, write_reconstruction, write_turntable
from .report import run_metrics, write_run_outputs
from .schedules import schedule_options
from .target import Target

DEMO_SEED = 4242           # the default generator trains on seeds 0 .. heads-1 (< 100)
DEMO_EXPRESSION = 0.3
INPUT_YAW, INPUT_ELEVATION = 20.0, 0.0   # degrees: a three-quarter-ish view, so both sides are tested
NOVEL_YAWS = (-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0)
# The demo runs the default schedule (inversion.schedules: the fast recipe) for NeRFInvertor.
DEFAULT_RUN = schedule_options("default", "nerfinvertor")
TUNING = DEFAULT_RUN["tuning_options"]
SCHEDULE = {"full": {"projection_steps": DEFAULT_RUN["projection_steps"],
                     "tuning_steps": DEFAULT_RUN["tuning_steps"], "frames": 24},
            "fast": {"projection_steps": 10, "tuning_steps": 3, "frames": 4}}


def _depth_png(depth: torch.Tensor, lo: float, hi: float) -> np.ndarray:
    d = ((depth[0] - lo) / max(hi - lo, 1e-6)).clamp(0, 1)
    return (d.cpu().numpy() * 255).astype(np.uint8)


def run_demo(out="nerfgan-demo", *, fast: bool = False, checkpoint="default", progress: bool = True,
             seed: int = 0) -> dict:
    """Run the demo; returns the metrics dict (also written to ``out/metrics.json``)."""
    import imageio.v3 as iio
    from nerfgan_kernels.models import load_generator
    t0 = time.perf_counter()
    out = Path(out)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    plan = SCHEDULE["fast" if fast else "full"]
    G = load_generator(checkpoint)
    res = G.img_resolution
    head = sample_head(DEMO_SEED, expression=DEMO_EXPRESSION)
    cam = yaw_cameras([INPUT_YAW], INPUT_ELEVATION)
    truth_in = render_head(head, cam, res)
    target = Target(truth_in["rgb"], cam, masks=truth_in["mask"])
    iio.imwrite(out / "input.png", to_uint8(target.images[0]))
    loss, note = loss_with_fallback("lpips-vgg")
    try:
        lpips_metric = load_lpips("alex")
    except LPIPSWeightsMissing:
        lpips_metric = None
    timings = {"setup": time.perf_counter() - t0}
    result = run("nerfinvertor", G, target, projection="w", projection_steps=plan["projection_steps"],
                 tuning_steps=plan["tuning_steps"], loss=loss, checkpoint_dir=out / "checkpoints",
                 tuning_options=dict(TUNING),
                 progress=progress, seed=seed)
    timings.update(result.timings)
    t1 = time.perf_counter()
    files = write_reconstruction(G, result.ws, target, out)
    files["turntable"] = write_turntable(G, result.ws, cam[0], out, frames=plan["frames"]).name
    novel = yaw_cameras(list(NOVEL_YAWS), INPUT_ELEVATION)
    truth = render_head(head, novel, res)
    held_out = score_views(G, result.ws, truth, novel, lpips_metric)
    input_view = score_views(G, result.ws, truth_in, cam, lpips_metric)
    lo, hi = float(truth["depth"][truth["mask"] > 0].min()), float(truth["depth"][truth["mask"] > 0].max())
    rows = [[], [], []]
    for i, yaw in enumerate(NOVEL_YAWS):
        depth = held_out["depths"][i]
        np.save(out / "depth" / f"yaw{yaw:+.0f}.npy", depth[0].cpu().numpy())
        png = _depth_png(depth, lo, hi)
        iio.imwrite(out / "depth" / f"yaw{yaw:+.0f}.png", png)
        rows[0].append(to_uint8(truth["rgb"][i]))
        rows[1].append(to_uint8(held_out["images"][i]))
        up = torch.nn.functional.interpolate(depth[None], size=(res, res), mode="nearest")[0]
        rows[2].append(np.repeat(_depth_png(up, lo, hi)[..., None], 3, axis=2))
    iio.imwrite(out / "novel_views.png", np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0))
    files.update(novel_views="novel_views.png", depth_maps="depth/", input="input.png")
    result.save(out)
    timings["outputs"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0

    metrics = run_metrics(
        method="nerfinvertor (masked), W projection", generator=str(checkpoint), views=1,
        loss=loss.perceptual_name, loss_note=note, input_view=input_view, held_out_views=held_out,
        optimisation={**result.metrics, "lpips_metric": "lpips-alex" if lpips_metric is not None else None},
        target={"head_seed": DEMO_SEED, "expression": DEMO_EXPRESSION, "input_yaw": INPUT_YAW,
                "input_elevation": INPUT_ELEVATION, "novel_yaws": list(NOVEL_YAWS),
                "schedule": plan},
        timings=timings, files=files)
    write_run_outputs(out, metrics)
    return metrics
