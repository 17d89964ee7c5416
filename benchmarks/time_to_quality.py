"""Time to quality: each contender's input-view and held-out quality against its optimisation time.

    python benchmarks/time_to_quality.py [--heads 5000 5001 5002] [--no-mesh]
        [--contenders nerfinvertor-published pti-published fast] [--work DIR] [--budget-hours H]
        [--out-dir benchmarks/results]

Targets: the evaluation heads (procedural seeds, never used to choose the recipe), each seen from
the demo's input view (yaw +20 degrees) and scored on its exact ground truth at the demo's
held-out yaws -45..45, and one out-of-family head with exact geometry (MediaPipe's canonical face
mesh wearing the astronaut photo, ``tests/textured_mesh.py``; needs the ``.[align]`` extra).

Contenders (``CONTENDERS``): the published schedules on the stock computation path (renderer
``ops="reference"``, equal to the official EG3D renderer to 1e-6): NeRFInvertor (W projection 500
steps, then 1000 tuning steps, its published weights) and PTI (the same projection, then 350
steps); and the project's fast recipe (``inversion.schedules`` "default") on the fused kernels.
Every contender uses the stage-default losses, with the perceptual term replaced by MSE + SSIM
for all of them when the LPIPS weights are not cached. Contenders with the same projection (the
two published ones) share its checkpoints and points; each tuning starts from a copy of it.

Each contender advances through its evaluation points (stage, step): ``inversion.run`` with
``stop_after`` stops the stage there and writes its checkpoint, the result is scored (scoring is
not timed), the next call resumes. Contenders are interleaved point by point, and both the
steps' wall time and their process CPU time are recorded, so a busy machine biases neither. Every
point is appended to ``WORK/curves.jsonl``; a rerun of the same command skips the points already
there and resumes the checkpoints in WORK, so a run longer than one sitting adds up (``--budget-hours``
stops cleanly after that much time).

Writes ``time-to-quality-<date>.md`` under --out-dir (final quality per contender and head, the headline: the
fast recipe's time to reach the published schedule's final input-view PSNR and held-out PSNR
(each within 0.2 dB) and held-out depth error (no worse), mean over the heads, and the ratio) and
``time-to-quality-<date>.png`` (quality against optimisation time, log axis, one curve per
contender).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from common import emit  # noqa: E402

import inversion  # noqa: E402
from inversion.data.heads import render_head, sample_head, yaw_cameras  # noqa: E402
from inversion.demo import DEMO_EXPRESSION, INPUT_ELEVATION, INPUT_YAW, NOVEL_YAWS  # noqa: E402
from inversion.evaluation import score_views  # noqa: E402
from inversion.losses import LPIPSWeightsMissing, load_lpips  # noqa: E402
from inversion.schedules import schedule_options  # noqa: E402
from nerfgan_kernels.models import load_generator  # noqa: E402
from nerfgan_kernels.render import ImportanceRenderer  # noqa: E402

PROJECTION_POINTS = (10, 25, 50, 100, 200, 350, 500)
TUNING_POINTS = (5, 10, 25, 50, 100, 200, 350, 500, 750, 1000)
MATCH_DB = 0.2


def contenders() -> dict[str, dict]:
    """name -> {method, ops, run options}."""
    return {
        "nerfinvertor-published": {"method": "nerfinvertor", "ops": "reference",
                                   "run": schedule_options("published", "nerfinvertor")},
        "pti-published": {"method": "pti", "ops": "reference", "run": schedule_options("published", "pti")},
        "fast": {"method": "nerfinvertor", "ops": "fused", "run": schedule_options("default", "nerfinvertor")},
    }


CONTENDERS = tuple(contenders())


def points(run: dict) -> list[tuple[str, int]]:
    """The evaluation points (stage, step) of a contender: its stages' steps on the point grid,
    and each stage's last step."""
    proj, tune = run["projection_steps"], run.get("tuning_steps") or 0
    out = [("projection", s) for s in PROJECTION_POINTS if s < proj] + [("projection", proj)]
    if tune:
        out += [("tuning", s) for s in TUNING_POINTS if s < tune] + [("tuning", tune)]
    return out


def head_targets(seeds, res: int, mesh: bool) -> dict[str, tuple]:
    """name -> (Target at the input view, held-out truth, held-out cameras)."""
    cam, held = yaw_cameras([INPUT_YAW], INPUT_ELEVATION), yaw_cameras(list(NOVEL_YAWS), INPUT_ELEVATION)
    out = {}
    for seed in seeds:
        head = sample_head(seed, expression=DEMO_EXPRESSION)
        t_in = render_head(head, cam, res)
        out[f"head {seed}"] = (inversion.Target(t_in["rgb"], cam, masks=t_in["mask"]), render_head(head, held, res), held)
    if mesh:
        out["astronaut mesh"] = mesh_target(cam, held, res)
    return out


def mesh_target(cam, held, res: int):
    """The canonical face mesh wearing the astronaut photo (its landmarks as texture coordinates),
    rendered with exact depth: (Target, held-out truth, held-out cameras)."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from skimage import data as skimage_data
    from textured_mesh import render_textured_mesh
    from inversion.align.pipeline import Aligner
    photo = skimage_data.astronaut()
    aligner = Aligner(512)
    try:
        uv = aligner.measure(photo, "astronaut").landmarks[:468, :2]
    finally:
        aligner.close()

    def views(cams):
        rgb, depth, mask = [], [], []
        for c in cams:
            image, d, m = render_textured_mesh(c, res, photo, uv, return_depth=True)
            rgb.append(torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1) / 127.5 - 1)
            depth.append(torch.from_numpy(np.where(m, d, 0.0)).float()[None])
            mask.append(torch.from_numpy(m.astype(np.float32))[None])
        return {"rgb": torch.stack(rgb), "depth": torch.stack(depth), "mask": torch.stack(mask)}

    t_in = views(cam)
    return inversion.Target(t_in["rgb"], cam, masks=t_in["mask"]), views(held), held


def optimisation_seconds(result) -> tuple[float, float]:
    """(wall, CPU) seconds of every stage's optimizer steps (evaluation excluded)."""
    wall = sum(v for k, v in result.timings.items() if k.endswith("_optimization"))
    cpu = sum(v for k, v in result.timings.items() if k.endswith("_optimization_cpu"))
    return wall, cpu


def projection_key(spec: dict) -> str:
    """Contenders with the same projection (ops, steps, options) share its checkpoints and points:
    the published PTI and NeRFInvertor schedules start from the same 500-step W projection."""
    run = spec["run"]
    key = json.dumps([spec["ops"], run["projection_steps"], run.get("projection_options", {})], sort_keys=True)
    return "projection-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def checkpoint_folder(work: Path, name: str, spec: dict, target_name: str, stage: str) -> Path:
    """Where a contender's stage checkpoints live: the shared projection folder for projection
    points, the contender's own folder (a copy of the projection, then its tuning) otherwise."""
    owner = projection_key(spec) if stage == "projection" else name
    return work / owner / target_name.replace(" ", "_")


def evaluate_point(name: str, spec: dict, target_name: str, target_data, stage: str, step: int,
                   work: Path, perceptual: str | None, metric, checkpoint: str) -> dict:
    """Advance one contender on one target to (stage, step), score it, return the curve record."""
    target, truth, held = target_data
    G = load_generator(checkpoint)
    G.renderer = ImportanceRenderer(ops=spec["ops"])
    run = dict(spec["run"])
    if perceptual is not None:  # like with like: every contender's stages on the same fallback loss
        run["projection_options"] = {**run.get("projection_options", {}), "perceptual": perceptual}
        run["tuning_options"] = {**run.get("tuning_options", {}), "perceptual": perceptual}
    if stage == "projection":
        method, run = "w", {k: v for k, v in run.items() if k != "tuning_options" and k != "tuning_steps"}
    else:
        method = spec["method"]
    folder = checkpoint_folder(work, name, spec, target_name, stage)
    if stage != "projection" and not (folder / "projection.pt").exists():  # start from the shared projection
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint_folder(work, name, spec, target_name, "projection") / "projection.pt",
                        folder / "projection.pt")
    result = inversion.run(method, G, target, checkpoint_dir=folder, stop_after=step, progress=False, **run)
    wall, cpu = optimisation_seconds(result)
    s_in = score_views(G, result.ws, {"rgb": target.images}, target.cameras, metric)
    s_out = score_views(G, result.ws, truth, held, metric)
    record = {"contender": name, "target": target_name, "stage": stage, "step": step,
              "wall_seconds": wall, "cpu_seconds": cpu, "input_psnr": s_in["mean_psnr"],
              "heldout_psnr": s_out["mean_psnr"], "heldout_ssim": s_out["mean_ssim"],
              "heldout_depth_mae": s_out["mean_depth_mae"]}
    if metric is not None:
        record["heldout_lpips"] = s_out["mean_lpips"]
    return record


def reached(curve: list[dict], goal: dict) -> dict | None:
    """The first point of a curve (sorted by time) matching the goal's input and held-out PSNR
    within MATCH_DB and its depth error or better; None if it never does."""
    for r in curve:
        if (r["input_psnr"] >= goal["input_psnr"] - MATCH_DB and r["heldout_psnr"] >= goal["heldout_psnr"] - MATCH_DB
                and r["heldout_depth_mae"] <= goal["heldout_depth_mae"]):
            return r
    return None


def mean_curve(records: list[dict], contender: str, targets: list[str]) -> list[dict]:
    """A contender's curve averaged over the targets, point by point (only the points every target
    has reached)."""
    by_point: dict[tuple, list[dict]] = {}
    for r in records:
        if r["contender"] == contender:
            by_point.setdefault((r["stage"] != "projection", r["step"]), []).append(r)
    keys = ("wall_seconds", "cpu_seconds", "input_psnr", "heldout_psnr", "heldout_ssim", "heldout_depth_mae")
    out = []
    for point in sorted(by_point):
        rs = {r["target"]: r for r in by_point[point]}
        if all(t in rs for t in targets):
            out.append({"stage": by_point[point][0]["stage"], "step": point[1],
                        **{k: float(np.mean([rs[t][k] for t in targets])) for k in keys}})
    return sorted(out, key=lambda r: r["cpu_seconds"])


def report(records: list[dict], names: list[str], targets: list[str], specs: dict, out_dir: Path, notes: list[str]):
    today = datetime.date.today().isoformat()
    md, png = out_dir / f"time-to-quality-{today}.md", out_dir / f"time-to-quality-{today}.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        final = points(specs[name]["run"])[-1]
        for t in targets:
            last = [r for r in records if r["contender"] == name and r["target"] == t]
            if not last:
                continue
            r = max(last, key=lambda r: (r["stage"] != "projection", r["step"]))
            done = (r["stage"], r["step"]) == final
            rows.append({"contender": name, "target": t, "at": f"{r['stage']} {r['step']}" + ("" if done else " (partial)"),
                         "input PSNR": r["input_psnr"], "held-out PSNR": r["heldout_psnr"],
                         "held-out SSIM": r["heldout_ssim"], "held-out depth MAE": r["heldout_depth_mae"],
                         "opt. wall s": r["wall_seconds"], "opt. CPU s": r["cpu_seconds"]})
    headline = []
    heads = [t for t in targets if t.startswith("head ")] or targets  # the headline: evaluation heads
    fast = mean_curve(records, "fast", heads)
    for ref in ("nerfinvertor-published", "pti-published"):
        curve = mean_curve(records, ref, heads)
        final = points(specs[ref]["run"])[-1] if ref in specs else None
        if not curve or final is None or (curve[-1]["stage"], curve[-1]["step"]) != final:
            headline.append(f"{ref}: not finished on every target yet (a rerun resumes it).")
            continue
        goal, hit = curve[-1], reached(fast, curve[-1])
        if hit is None:
            headline.append(f"fast does not reach {ref}'s final quality (input {goal['input_psnr']:.2f} dB, "
                            f"held-out {goal['heldout_psnr']:.2f} dB, depth {goal['heldout_depth_mae']:.4f}).")
        else:
            headline.append(f"fast reaches {ref}'s final quality (mean over {len(heads)} heads) after "
                            f"{hit['cpu_seconds']:.0f} CPU s vs {goal['cpu_seconds']:.0f} CPU s: "
                            f"1/{goal['cpu_seconds'] / max(hit['cpu_seconds'], 1e-9):.1f} of the time "
                            f"(wall {hit['wall_seconds']:.0f} s vs {goal['wall_seconds']:.0f} s).")
    if md.exists():
        md.unlink()
    if not rows:
        print("no points measured yet")
        return md
    emit(f"Time to quality ({today})", rows, headline + notes, str(md))
    plot(records, names, heads, png)
    return md


def plot(records, names, targets, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name in names:
        curve = mean_curve(records, name, targets)
        if not curve:
            continue
        t = [max(r["cpu_seconds"], 1e-3) for r in curve]
        for ax, key in zip(axes, ("input_psnr", "heldout_psnr", "heldout_depth_mae")):
            ax.plot(t, [r[key] for r in curve], marker="o", label=name)
    for ax, title in zip(axes, ("input-view PSNR (dB)", "held-out PSNR (dB)", "held-out depth MAE")):
        ax.set_xscale("log")
        ax.set_xlabel("optimisation CPU seconds (log)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"mean over {len(targets)} targets: " + ", ".join(targets))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", type=int, nargs="*", default=[5000, 5001, 5002])
    ap.add_argument("--no-mesh", action="store_true", help="without the astronaut-mesh target")
    ap.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--work", default=str(HERE / "results" / "time-to-quality-work"),
                    help="checkpoints and curves.jsonl (a rerun resumes from them)")
    ap.add_argument("--budget-hours", type=float, default=None, help="stop after this much wall time")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--overrides", default=None, help=argparse.SUPPRESS)  # tests: JSON {contender: {run option: value}}
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    torch.manual_seed(0)
    specs = contenders()
    for name, changes in json.loads(args.overrides or "{}").items():
        specs[name]["run"].update(changes)
    try:
        load_lpips("vgg")
        perceptual, metric = None, load_lpips("alex")
    except LPIPSWeightsMissing:
        perceptual, metric = "mse+ssim", None
    res = load_generator(args.checkpoint).img_resolution
    targets = head_targets(args.heads, res, mesh=not args.no_mesh)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    curves = work / "curves.jsonl"
    records = [json.loads(line) for line in curves.read_text().splitlines()] if curves.exists() else []
    # A point counts only while the checkpoint it continues from is there (a new machine without
    # the work folder measures the contender again from its start).
    kept = [r for r in records if r["contender"] in specs and (checkpoint_folder(
        work, r["contender"], specs[r["contender"]], r["target"], r["stage"]) /
        ("projection.pt" if r["stage"] == "projection" else "tuning.pt")).exists()]
    if len(kept) != len(records):
        print(f"{len(records) - len(kept)} recorded points lost their checkpoints: measured again")
        records = kept
        curves.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = {(r["contender"], r["target"], r["stage"], r["step"]) for r in records}
    plans = {n: points(specs[n]["run"]) for n in args.contenders}
    stopped = False
    for i in range(max(len(p) for p in plans.values())):  # interleaved, point by point
        for name in args.contenders:
            if i >= len(plans[name]):
                continue
            stage, step = plans[name][i]
            for t_name, t_data in targets.items():
                if (name, t_name, stage, step) in done:
                    continue
                twin = next((r for r in records if stage == "projection" and r["target"] == t_name
                             and r["stage"] == stage and r["step"] == step and r["contender"] in specs
                             and projection_key(specs[r["contender"]]) == projection_key(specs[name])), None)
                if args.budget_hours is not None and time.perf_counter() - t_start > 3600 * args.budget_hours:
                    stopped = True
                    break
                if twin is not None:  # the same projection, already measured for another contender
                    r = {**twin, "contender": name}
                else:
                    r = evaluate_point(name, specs[name], t_name, t_data, stage, step, work, perceptual,
                                       metric, args.checkpoint)
                records.append(r)
                with curves.open("a") as f:
                    f.write(json.dumps(r) + "\n")
                print(json.dumps(r), flush=True)
    notes = [f"Targets: {', '.join(targets)}; input view yaw {INPUT_YAW:+.0f}, held-out yaws {list(NOVEL_YAWS)}.",
             "Contenders: " + "; ".join(f"{n}: {specs[n]['method']} on ops={specs[n]['ops']}, {specs[n]['run']}"
                                         for n in args.contenders) + ".",
             f"Loss: stage defaults{'' if perceptual is None else ', perceptual term MSE + SSIM (LPIPS weights not cached)'}; "
             f"times: the optimizer steps only (evaluation excluded), CPU = process time of all {torch.get_num_threads()} threads.",
             "Interrupted by --budget-hours: rerun to continue." if stopped else "All points measured."]
    out = report(records, args.contenders, list(targets), specs, Path(args.out_dir), notes)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
