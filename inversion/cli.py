"""``nerfgan-invert``: photo + camera -> inverted (and tuned) generator, pictures, metrics.

    nerfgan-invert                       # the demo: a procedural head, NeRFInvertor, default model
    nerfgan-invert --method nerfinvertor --image face.png --camera cam.json \\
        --checkpoint ffhq512-128.pkl --out runs/x [--schedule default|published] [--steps N] [--fast]
    nerfgan-invert --method {multiview,multilatent,incremental} --images DIR_OR_FILES... \\
        [--camera dataset.json] --out runs/y
    nerfgan-invert --method incremental --video clip.mp4 --video-frames 8 --camera dataset.json --out runs/z

Cameras of several images: EG3D's dataset.json (looked up by file name; default: the one beside
the images). Photos with neither ``--camera`` nor a dataset.json beside them are aligned first
(``nerfgan-align`` for the generator's resolution and convention, into OUT/aligned; needs the
``.[align]`` extra): the crops, their labels and person masks are then the target. Video: ``--video-frames`` frames sampled evenly through imageio; ``--camera`` is a
dataset.json whose labels, in file order, are those frames' cameras (one per sampled frame).

Writes into --out: result.safetensors + result.json (ws, tuned weights as a delta against the
checkpoint), reconstruction.png, depth.png, turntable.mp4 (or .gif), metrics.json, logs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from nerfgan_kernels.render.cameras import GEOMETRIES, geometry_for

from .api import METHODS, run
from .evaluation import depth_consistency, latent_for, score_views
from .losses import OFFLINE_ENV, ImageLoss, loss_with_fallback
from .multilatent import AzimuthBlend
from .mesh import export_mesh
from .outputs import write_reconstruction, write_turntable
from .report import run_metrics, write_run_outputs
from .schedules import SCHEDULES, schedule_options
from .target import Target, load_masks, load_target, load_video_target

FAST = {"projection_steps": 20, "tuning_steps": 10, "frames": 6,
        "nerfinvertor": {"explicit_resolution": 32, "explicit_samples": 16},
        "incremental": {"frame_steps": 5, "tune_steps": 2}}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def expand_images(paths) -> list[str]:
    """Files stay; a folder becomes its PNG/JPEG files, sorted by name."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise SystemExit(f"--images: no PNG/JPEG files in {p}")
            out.extend(map(str, found))
        else:
            out.append(str(p))
    return out


def align_for_inversion(images: list[str], G, out_dir: Path, masks=None) -> Target:
    """Photos without a camera: align them for the generator (nerfgan-align's pipeline) into the
    inversion target, in memory; the aligned folder (crops, masks, labels, overlays) is written to
    ``out_dir`` for the record. masks: the user's masks replace the person masks."""
    from .align.pipeline import Aligner, aligned_target, write_aligned
    try:
        aligner = Aligner.for_generator(G)
    except ImportError as e:
        raise SystemExit(f"no --camera and no dataset.json beside {images[0]}: {e}") from None
    try:
        aligned, errors = aligner.align_files(images)
    finally:
        aligner.close()
    write_aligned(out_dir, aligned, errors, aligner.convention)
    if errors:
        raise SystemExit("alignment failed: " + "; ".join(errors))
    for a in aligned:
        m = a.measurement
        print(f"aligned {a.name}: yaw {m.yaw:+.1f}, elevation {m.elevation:+.1f} deg -> {out_dir}")
    target = aligned_target(aligned)
    if masks:
        target = Target(target.images, target.cameras, load_masks(masks, target.images.shape[-1]))
    return target


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of one inversion run, shared by nerfgan-invert and nerfgan-batch."""
    p.add_argument("--masked", action="store_true", help="nerfinvertor: masked regularizers (foreground from "
                   "the original generator's opacity; the input view's from --mask when given)")
    p.add_argument("--checkpoint", default="default", help="EG3D .pkl, .safetensors, or 'default'")
    p.add_argument("--steps", type=int, default=None,
                   help="steps of the method's main stage (projection for w/wplus, tuning otherwise)")
    p.add_argument("--projection-steps", type=int, default=None)
    p.add_argument("--perceptual", default="lpips-vgg", choices=["lpips-vgg", "lpips-alex", "mse+ssim", "none"],
                   help="perceptual loss; 'mse+ssim' is the fallback when the LPIPS backbone weights are missing")
    p.add_argument("--schedule", default="default", choices=sorted(SCHEDULES),
                   help="steps and stage options: 'default' (the fast recipe, inversion.schedules) or "
                   "'published' (the papers' 500 projection + 350 PTI / 1000 NeRFInvertor steps)")
    p.add_argument("--fast", action="store_true", help="short schedule and small renders, for a quick look")
    p.add_argument("--frames", type=int, default=None, help="turntable frames (default 24, --fast 6)")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="'auto' (CUDA when present, else the CPU), 'cpu', 'cuda', 'cuda:N'")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: the run under bfloat16 autocast (the kernels have autocast rules)")
    p.add_argument("--geometry", default=None, choices=sorted(GEOMETRIES),
                   help="camera geometry (radius, pivot, focal, neighbour cameras, turntable; default: "
                   "the generator's config)")
    p.add_argument("--max-memory", type=float, default=None, metavar="GIB",
                   help="budget of the renderer's per-chunk intermediates (default: half the free GPU "
                   "memory on CUDA, 2 GiB on the CPU)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--mesh", action="store_true", help="also write mesh.ply: marching cubes of the tuned "
                   "generator's density (world frame, vertex colours; inversion.mesh)")
    p.add_argument("--mesh-resolution", type=int, default=256, help="grid size per axis for --mesh")
    p.add_argument("--mesh-threshold", type=float, default=None,
                   help="density level for --mesh (default: the generator's, EG3D's 10 for EG3D checkpoints)")
    p.add_argument("--mrc", action="store_true", help="with --mesh: also the density volume density.mrc")
    p.add_argument("--offline", action="store_true", help="never download (LPIPS backbone weights); "
                   "the same as NERFGAN_OFFLINE=1")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nerfgan-invert", description=__doc__.split("\n")[0])
    p.add_argument("--method", default=None, choices=METHODS,
                   help="required with --image; without both, the demo runs (see inversion.demo)")
    p.add_argument("--image", "--images", dest="image", default=None, nargs="+",
                   help="PNG/JPEG file(s) or folder(s) of them")
    p.add_argument("--video", default=None, help="a video file (frames sampled through imageio)")
    p.add_argument("--video-frames", type=int, default=8, help="frames sampled evenly from --video")
    p.add_argument("--camera", default=None, help="{'label': [25]} file or EG3D dataset.json "
                   "(default: dataset.json beside the image; with neither, the photo is aligned)")
    p.add_argument("--mask", default=None, nargs="+", help="foreground mask image(s)")
    p.add_argument("--out", default=None, help="output folder (the demo's default: nerfgan-demo)")
    add_run_options(p)
    args = p.parse_args(argv)
    if args.image is not None and args.video is not None:
        p.error("give --image/--images or --video, not both")
    if (args.method is None) != (args.image is None and args.video is None):
        p.error("--method and --image/--video go together (give neither to run the demo)")
    if args.method is not None and args.out is None:
        p.error("--out is required with --method")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return report_errors("nerfgan-invert", args, lambda: _main(args))


def report_errors(prog: str, args: argparse.Namespace, body) -> int:
    """Run ``body()``; an error is one line on stderr naming the problem (exit code 2) unless
    ``--debug``, which shows the traceback."""
    if args.offline:
        os.environ[OFFLINE_ENV] = "1"
    try:
        return body()
    except Exception as e:  # noqa: BLE001 - every failure becomes one readable line
        if args.debug:
            raise
        print(f"{prog}: error: {e if isinstance(e, OSError) else f'{type(e).__name__}: {e}'} "
              "(--debug shows the traceback)", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    if args.method is None:
        from .demo import run_demo
        metrics = run_demo(args.out or "nerfgan-demo", fast=args.fast, checkpoint=args.checkpoint,
                           progress=not args.no_progress, seed=args.seed)
        out = Path(args.out or "nerfgan-demo").resolve()
        held = metrics["held_out_views"]
        print(f"demo done in {metrics['timings']['total']:.0f} s: input-view PSNR "
              f"{metrics['input_view']['psnr']:.2f} dB, held-out views PSNR {held['psnr']:.2f} dB, "
              f"depth MAE {held['depth_mae']:.4f}\noutputs in {out} (report.md, turntable, "
              f"novel_views.png, depth/, metrics.json)")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from nerfgan_kernels.models import load_generator
    t0 = time.perf_counter()
    args.device = resolve_device(args.device)
    G = load_generator(args.checkpoint, device=args.device)
    set_memory_budget(G, args.device, args.max_memory)
    set_geometry(G, args.geometry)
    target = load_run_target(args, G, out)
    metrics = invert_to_folder(args, G, target, out, t0)
    print(json.dumps({"out": str(out), "psnr": metrics["input_view"]["psnr"], "files": metrics["files"]}))
    return 0


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is present, else 'cpu'; anything else as given (ValueError for a
    CUDA device on a machine without one)."""
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device here (use --device cpu or auto)")
    return device


def set_memory_budget(G, device: str, max_memory_gib: float | None) -> None:
    """The renderer's chunk budget (the memory planner's max_memory_bytes): --max-memory GiB, or
    half the free memory of the GPU, or the renderer's CPU default."""
    import torch
    if max_memory_gib is not None:
        if not max_memory_gib > 0:
            raise ValueError(f"--max-memory must be > 0 GiB, got {max_memory_gib}")
        G.renderer.max_memory_bytes = max_memory_gib * 2 ** 30
    elif device.startswith("cuda"):
        G.renderer.max_memory_bytes = torch.cuda.mem_get_info(torch.device(device))[0] / 2


def set_geometry(G, name: str | None) -> None:
    """--geometry: the named preset (with the generator's own radius and pivot) replaces the
    geometry of the generator's metadata."""
    if name is not None:
        G.metadata = dataclasses.replace(G.metadata, geometry=geometry_for(name, G.rendering_kwargs))


def load_run_target(args: argparse.Namespace, G, out: Path) -> Target:
    """The target of a run: --video with its cameras, or --image files with --camera / a
    dataset.json beside them, or else aligned (into OUT/aligned)."""
    resolution = G.img_resolution
    if args.video is not None:
        return load_video_target(args.video, args.camera, args.video_frames, resolution).to(args.device)
    images = expand_images(args.image)
    if args.camera is None and not (Path(images[0]).parent / "dataset.json").exists():
        target = align_for_inversion(images, G, out / "aligned", args.mask)
    else:
        target = load_target(images, args.camera, args.mask, resolution=resolution)
    return target.to(args.device)


def run_options(args: argparse.Namespace) -> dict:
    """``inversion.run`` step counts and stage options from the schedule, --fast, --steps,
    --projection-steps and --masked."""
    schedule = schedule_options(args.schedule, args.method)
    tuning_options = schedule.get("tuning_options", {})
    if args.fast:  # the smoke run: few steps and small renders on top of the schedule's options
        schedule.update(projection_steps=FAST["projection_steps"], tuning_steps=FAST["tuning_steps"])
        tuning_options.update(FAST.get(args.method, {}))
    projection_steps = args.projection_steps or schedule["projection_steps"]
    tuning_steps = schedule.get("tuning_steps")
    if args.steps is not None:
        if args.method in ("w", "wplus"):
            projection_steps = args.steps
        else:
            tuning_steps = args.steps
    if args.masked:
        if args.method != "nerfinvertor":
            raise SystemExit("--masked applies to --method nerfinvertor only")
        tuning_options["masked"] = True
    return {"projection_steps": projection_steps, "tuning_steps": tuning_steps, "tuning_options": tuning_options}


def invert_to_folder(args: argparse.Namespace, G, target: Target, out: Path, t0: float) -> dict:
    """Invert ``target`` with ``G`` (tuned in place) as the options say, resumably (checkpoints in
    OUT/checkpoints), and write the result, the pictures, metrics.json and report.md into ``out``.
    Returns the metrics."""
    multi = args.method in ("multiview", "multilatent", "incremental")
    if multi and len(target) < 2:
        raise SystemExit(f"--method {args.method} needs several views; got {len(target)} image")
    loss, note = loss_with_fallback(args.perceptual) if args.perceptual.startswith("lpips") \
        else (ImageLoss(1.0, 1.0, args.perceptual), None)
    timings = {"load": time.perf_counter() - t0}
    import torch
    with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
        result = run(args.method, G, target, **run_options(args), loss=loss, checkpoint_dir=out / "checkpoints",
                     checkpoint_every=args.checkpoint_every, progress=not args.no_progress, seed=args.seed)
    result.timings.update(timings)
    t1 = time.perf_counter()
    source = AzimuthBlend.from_result(result) if args.method == "multilatent" else result.ws
    files = write_reconstruction(G, source, target, out)
    frames = args.frames or (FAST["frames"] if args.fast else 24)
    files["turntable"] = write_turntable(G, source, target.cameras[0], out, frames=frames).name
    if args.mesh:
        export_mesh(G, latent_for(source, target.cameras[:1]), out / "mesh.ply", args.mesh_resolution,
                    args.mesh_threshold, mrc=out / "density.mrc" if args.mrc else None)
        files["mesh"] = "mesh.ply"
        if args.mrc:
            files["density"] = "density.mrc"
    result.timings["outputs"] = time.perf_counter() - t1
    result.save(out)
    input_view = score_views(G, source, {"rgb": target.images}, target.cameras)
    result.timings["total"] = time.perf_counter() - t0
    metrics = run_metrics(
        method=args.method, generator=str(args.checkpoint), views=len(target),
        loss=loss.perceptual_name, loss_note=note, input_view=input_view, optimisation=result.metrics,
        depth_consistency=depth_consistency(G, source, target.cameras, target.cameras) if multi else None,
        target={"images": [str(p) for p in args.image or []],
                "video": None if args.video is None else str(args.video),
                "camera": None if args.camera is None else str(args.camera)},
        timings=result.timings, files=files)
    write_run_outputs(out, metrics)
    return metrics


if __name__ == "__main__":
    sys.exit(main())
