"""``nerfgan-invert``: photo + camera -> inverted (and tuned) generator, pictures, metrics.

    nerfgan-invert --method nerfinvertor --image face.png --camera cam.json \\
        --checkpoint ffhq512-128.pkl --out runs/x [--steps N] [--fast]

Writes into --out: result.safetensors + result.json (ws, tuned weights as a delta against the
checkpoint), reconstruction.png, depth.png, turntable.mp4 (or .gif), metrics.json, logs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


from .api import METHODS, run
from .losses import ImageLoss
from .outputs import write_reconstruction, write_turntable
from .target import load_target

FAST = {"projection_steps": 20, "tuning_steps": 10, "frames": 6,
        "nerfinvertor": {"explicit_resolution": 32, "explicit_samples": 16}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nerfgan-invert", description=__doc__.split("\n")[0])
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--image", required=True, nargs="+", help="PNG/JPEG file(s)")
    p.add_argument("--camera", default=None, help="{'label': [25]} file or EG3D dataset.json "
                   "(default: dataset.json beside the image)")
    p.add_argument("--mask", default=None, nargs="+", help="foreground mask image(s)")
    p.add_argument("--masked", action="store_true", help="nerfinvertor: masked regularizers (foreground from "
                   "the original generator's opacity; the input view's from --mask when given)")
    p.add_argument("--checkpoint", default="default", help="EG3D .pkl, .safetensors, or 'default'")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=None,
                   help="steps of the method's main stage (projection for w/wplus, tuning otherwise)")
    p.add_argument("--projection-steps", type=int, default=None)
    p.add_argument("--perceptual", default="lpips-vgg", choices=["lpips-vgg", "lpips-alex", "mse+ssim", "none"],
                   help="perceptual loss; 'mse+ssim' is the fallback when the LPIPS backbone weights are missing")
    p.add_argument("--fast", action="store_true", help="short schedule and small renders, for a quick look")
    p.add_argument("--frames", type=int, default=None, help="turntable frames (default 24, --fast 6)")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from nerfgan_kernels.models import load_generator
    t0 = time.perf_counter()
    G = load_generator(args.checkpoint, device=args.device)
    target = load_target(args.image, args.camera, args.mask,
                         resolution=getattr(G, "img_resolution", None)).to(args.device)
    loss = ImageLoss(1.0, 1.0, args.perceptual)
    projection_steps = args.projection_steps or (FAST["projection_steps"] if args.fast else 500)
    tuning_steps = FAST["tuning_steps"] if args.fast else None
    if args.steps is not None:
        if args.method in ("w", "wplus"):
            projection_steps = args.steps
        else:
            tuning_steps = args.steps
    tuning_options = dict(FAST["nerfinvertor"]) if args.fast and args.method == "nerfinvertor" else {}
    if args.masked:
        if args.method != "nerfinvertor":
            raise SystemExit("--masked applies to --method nerfinvertor only")
        tuning_options["masked"] = True
    timings = {"load": time.perf_counter() - t0}
    result = run(args.method, G, target, projection_steps=projection_steps, tuning_steps=tuning_steps,
                 tuning_options=tuning_options, loss=loss, checkpoint_dir=out / "checkpoints",
                 checkpoint_every=args.checkpoint_every, progress=not args.no_progress, seed=args.seed)
    result.timings.update(timings)
    t1 = time.perf_counter()
    files = write_reconstruction(G, result.ws, target, out)
    frames = args.frames or (FAST["frames"] if args.fast else 24)
    files["turntable"] = write_turntable(G, result.ws, target.cameras[0], out, frames=frames).name
    result.timings["outputs"] = time.perf_counter() - t1
    result.save(out)
    metrics = {"method": args.method, "perceptual": loss.perceptual_name, "input_view": result.metrics,
               "timings": result.timings, "files": files}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(json.dumps({"out": str(out), "psnr": result.metrics.get("psnr"), "files": files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
