"""Inversion quality on held-out procedural heads, scored against exact ground truth.

    python benchmarks/quality.py [--heads 5000 5001 5002] [--projection-steps 200]
        [--tuning-steps 80] [--methods w wplus pti nerfinvertor nerfinvertor-masked]
        [--sequence-heads 5003] [--out FILE.md]

Each head (a seed outside the default generator's training seeds) is seen from one camera
(yaw +20 degrees, as the demo) and inverted into the embedded default generator by every method;
the result is scored on the input view and on held-out views at yaw -45..45 degrees: PSNR, SSIM,
LPIPS-Alex when its weights are cached, and the mean absolute depth error on the foreground (world
units; the box is 1). PTI and both NeRFInvertor variants start from the same W pivot. The table
(means over heads) is printed and written to benchmarks/results/quality-<date>.md.

Second table (``--sequence-heads``; none with ``--sequence-heads``): an expression sequence, the
video-inconsistency case: five frames at yaw -40..40 whose expression varies (0.15 .. 0.55), held-out
views at yaw -30, -10, 10, 30 with the middle expression. Methods: single view (W projection of the
frontal frame), multi-view (one W+ latent), multi-latent (three regularizers; novel views from the
azimuth blend), incremental (frames in stream order, frontal first). Also the depth-consistency
metric over the frames' cameras.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit  # noqa: E402

from inversion import Target  # noqa: E402
from inversion.data.heads import render_head, sample_head, yaw_cameras  # noqa: E402
from inversion.demo import DEMO_EXPRESSION, INPUT_ELEVATION, INPUT_YAW, NOVEL_YAWS, TUNING  # noqa: E402
from inversion.evaluation import depth_consistency, score_views  # noqa: E402
from inversion.incremental import Session  # noqa: E402
from inversion.multilatent import AzimuthBlend, multilatent_inversion, multiview_inversion  # noqa: E402
from inversion.loop import LoopConfig  # noqa: E402
from inversion.losses import LPIPSWeightsMissing, load_lpips, loss_with_fallback  # noqa: E402
from inversion.nerfinvertor import nerfinvertor_tuning  # noqa: E402
from inversion.projection import project  # noqa: E402
from inversion.pti import pivotal_tuning  # noqa: E402
from nerfgan_kernels.models import load_generator  # noqa: E402

METHODS = ("w", "wplus", "pti", "nerfinvertor", "nerfinvertor-masked")


def invert(method: str, G, target, loss, pivot, args) -> tuple:
    """-> (generator to render with, ws, seconds). ``pivot``: the W projection Result (shared)."""
    t0 = time.perf_counter()
    common = {"loss": loss, "loop": LoopConfig(steps=0, progress=False)}
    if method == "w":
        return G, pivot.ws, pivot.timings["projection"]
    if method == "wplus":
        r = project(G, target, mode="wplus", steps=args.projection_steps, **common)
        return G, r.ws, time.perf_counter() - t0
    tuned = G.clone()
    if method == "pti":
        r = pivotal_tuning(tuned, target, pivot.ws, steps=args.tuning_steps, early_stop_lpips=None, **common)
    else:
        options = dict(TUNING, masked=method == "nerfinvertor-masked")
        r = nerfinvertor_tuning(tuned, target, pivot.ws, steps=args.tuning_steps, **options, **common)
    return tuned, r.ws, time.perf_counter() - t0 + pivot.timings["projection"]


SEQ_YAWS, SEQ_EXPRESSIONS = (-40.0, -20.0, 0.0, 20.0, 40.0), (0.15, 0.25, 0.35, 0.45, 0.55)
SEQ_HELD_YAWS, SEQ_HELD_EXPRESSION = (-30.0, -10.0, 10.0, 30.0), 0.35
SEQ_METHODS = ("single view (W)", "multiview", "multilatent", "incremental")


def sequence_rows(seeds, args, loss, metric) -> list[dict]:
    """The expression-sequence table (module docstring), means over ``seeds``."""
    quiet = lambda: LoopConfig(steps=0, progress=False)  # noqa: E731
    sums: dict[str, dict[str, float]] = {m: {} for m in SEQ_METHODS}
    cams, held = yaw_cameras(list(SEQ_YAWS)), yaw_cameras(list(SEQ_HELD_YAWS))
    for seed in seeds:
        G0 = load_generator(args.checkpoint)
        res = G0.img_resolution
        frames = [render_head(sample_head(seed, expression=e), cams[i:i + 1], res) for i, e in enumerate(SEQ_EXPRESSIONS)]
        target = Target(torch.cat([f["rgb"] for f in frames]), cams)
        truth = render_head(sample_head(seed, expression=SEQ_HELD_EXPRESSION), held, res)
        for method in SEQ_METHODS:
            G, t0 = load_generator(args.checkpoint), time.perf_counter()
            if method.startswith("single"):
                r = project(G, Target(target.images[2:3], cams[2:3]), mode="w", steps=args.projection_steps,
                            loss=loss, loop=quiet())
                source = r.ws
            elif method == "multiview":
                source = multiview_inversion(G, target, steps=args.projection_steps, loss=loss, loop=quiet()).ws
            elif method == "multilatent":
                r = multilatent_inversion(G, target, iterations=args.tuning_steps // 2, loss=loss,
                                          multiview_steps=args.projection_steps, loop=quiet())
                source = AzimuthBlend.from_result(r)
            else:
                session = Session(G, first_steps=args.projection_steps, frame_steps=20, tune_steps=10, loss=loss)
                for i in (2, 1, 3, 0, 4):  # frontal first, then outward
                    session.add_frame(target.images[i], cams[i])
                source = session.ws
            seconds = time.perf_counter() - t0
            scores = score_views(G, source, truth, held, metric)
            row = {"held-out PSNR": scores["mean_psnr"], "held-out SSIM": scores["mean_ssim"],
                   "held-out depth MAE": scores["mean_depth_mae"],
                   "depth consistency": depth_consistency(G, source, cams, held), "seconds": seconds}
            if metric is not None:
                row["held-out LPIPS"] = scores["mean_lpips"]
            print(f"sequence head {seed} {method}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
            for k, v in row.items():
                sums[method][k] = sums[method].get(k, 0.0) + v / len(seeds)
    return [{"method": m, **sums[m]} for m in SEQ_METHODS]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", type=int, nargs="+", default=[5000, 5001, 5002])
    ap.add_argument("--projection-steps", type=int, default=200)
    ap.add_argument("--tuning-steps", type=int, default=80)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--sequence-heads", type=int, nargs="*", default=[5003])
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  f"quality-{datetime.date.today().isoformat()}.md"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    loss, note = loss_with_fallback("lpips-vgg")
    try:
        metric = load_lpips("alex")
    except LPIPSWeightsMissing:
        metric = None
    cam, novel = yaw_cameras([INPUT_YAW], INPUT_ELEVATION), yaw_cameras(list(NOVEL_YAWS), INPUT_ELEVATION)
    sums: dict[str, dict[str, float]] = {m: {} for m in args.methods}
    for seed in args.heads:
        head = sample_head(seed, expression=DEMO_EXPRESSION)
        G = load_generator(args.checkpoint)
        truth_in, truth = render_head(head, cam, G.img_resolution), render_head(head, novel, G.img_resolution)
        target = Target(truth_in["rgb"], cam, masks=truth_in["mask"])
        pivot = project(G, target, mode="w", steps=args.projection_steps, loss=loss,
                        loop=LoopConfig(steps=0, progress=False))
        for method in args.methods:
            Gm, ws, seconds = invert(method, G, target, loss, pivot, args)
            s_in, s_out = score_views(Gm, ws, truth_in, cam, metric), score_views(Gm, ws, truth, novel, metric)
            row = {"input PSNR": s_in["mean_psnr"], "input SSIM": s_in["mean_ssim"],
                   "held-out PSNR": s_out["mean_psnr"], "held-out SSIM": s_out["mean_ssim"],
                   "held-out depth MAE": s_out["mean_depth_mae"], "input depth MAE": s_in["mean_depth_mae"],
                   "seconds": seconds}
            if metric is not None:
                row.update({"input LPIPS": s_in["mean_lpips"], "held-out LPIPS": s_out["mean_lpips"]})
            print(f"head {seed} {method}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
            for k, v in row.items():
                sums[method][k] = sums[method].get(k, 0.0) + v / len(args.heads)
    rows = [{"method": m, **sums[m]} for m in args.methods]
    notes = [f"{len(args.heads)} held-out heads (seeds {args.heads}), expression {DEMO_EXPRESSION}; input view yaw "
             f"{INPUT_YAW:+.0f} deg; held-out views yaw {list(NOVEL_YAWS)}; means over heads.",
             f"Projection (W and W+) {args.projection_steps} steps; PTI and NeRFInvertor {args.tuning_steps} "
             f"tuning steps from the same W pivot (seconds include the pivot's projection).",
             f"NeRFInvertor options: {TUNING} (the masked row uses masks from the target's exact mask and "
             "G0's opacity; the other row masked=False).",
             f"Loss: {loss.perceptual_name}" + (f" ({note.split(':')[0]})" if note else "") +
             f"; LPIPS metric: {'lpips-alex' if metric is not None else 'not available (weights not cached)'}.",
             f"Generator: {args.checkpoint}; CPU, {torch.get_num_threads()} threads."]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if os.path.exists(args.out):
        os.remove(args.out)
    emit(f"Inversion quality on held-out procedural heads ({datetime.date.today().isoformat()})", rows,
         notes, args.out)
    if args.sequence_heads:
        seq = sequence_rows(args.sequence_heads, args, loss, metric)
        emit("Expression sequence (several frames, inconsistent expressions)", seq, [
            f"Heads {args.sequence_heads}; frames yaw {list(SEQ_YAWS)} with expressions {list(SEQ_EXPRESSIONS)}; "
            f"held-out views yaw {list(SEQ_HELD_YAWS)} at expression {SEQ_HELD_EXPRESSION}.",
            f"Single view and multi-view: {args.projection_steps} projection steps (multi-view: W+, lr 0.1, "
            f"w_avg weight 1); multi-latent: that multi-view stage + {args.tuning_steps // 2} iterations "
            "(published weights); incremental: first frame "
            f"{args.projection_steps} steps, then 20 latent + 10 tuning steps per frame.",
            "Depth consistency: per-pixel std of held-out-view depth across the latents used for the "
            "frames (0 for single-latent methods)."], args.out)


if __name__ == "__main__":
    main()
