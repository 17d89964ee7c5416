"""Time per optimizer step of W projection, PTI and NeRFInvertor on the EG3D FFHQ-512 configuration
(random weights, batch 1), the renderer fused (the default), on the per-op kernels and on the
PyTorch reference ops, in one run, and the projected wall time of the paper's full schedule
(projection 500 steps; PTI 350 steps; NeRFInvertor 1000 steps).

    python benchmarks/bench_inversion.py [--device cpu|cuda] [--steps 1] [--nrr 128]
        [--explicit-resolution 128] [--out FILE.md]

The loss is MSE (+ LPIPS-VGG when --perceptual lpips-vgg and its ImageNet weights are cached), so
by default the perceptual network's cost is not included; the table says which.
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bench_args, device_name, emit  # noqa: E402

import inversion  # noqa: E402
from inversion.losses import ImageLoss  # noqa: E402
from nerfgan_kernels.models import build_generator  # noqa: E402
from nerfgan_kernels.render import ImportanceRenderer, look_at_camera  # noqa: E402

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "ffhq512_manifest.json")
FULL_SCHEDULE = {"projection": 500, "pti": 350, "nerfinvertor": 1000}


def _extra(ap):
    ap.add_argument("--steps", type=int, default=1, help="timed steps per method (after 0 warm-up)")
    ap.add_argument("--nrr", type=int, default=128, help="neural rendering resolution")
    ap.add_argument("--explicit-resolution", type=int, default=128,
                    help="NeRFInvertor explicit term rays per side (paper: 128)")
    ap.add_argument("--perceptual", default="none", choices=["none", "lpips-vgg", "mse+ssim"])
    ap.add_argument("--ops", default="fused,kernels,reference")


def step_seconds(result: inversion.Result) -> float:
    """Median seconds per step of a result's logs."""
    times = sorted(r["seconds"] for r in result.logs)
    return times[len(times) // 2]


def main(argv=None) -> str:
    args = bench_args(__doc__, repeats=1, devices=("cpu", "cuda"), default_device="cpu", argv=argv,
                      extra=_extra)
    device = torch.device(args.device)
    torch.manual_seed(0)
    kwargs = json.load(open(MANIFEST))["generator_kwargs"]
    base = build_generator(kwargs, args.nrr).eval().to(device)
    c = look_at_camera(torch.tensor([1.57]), torch.tensor([1.57])).to(device)
    with torch.no_grad():
        image = base.synthesis(base.mapping(torch.randn(1, base.z_dim, device=device), c), c)["image"]
    target = inversion.Target(image, c)
    loss = ImageLoss(1.0, 0.0 if args.perceptual == "none" else 1.0, args.perceptual)
    rows, per_step = [], {}
    for ops in args.ops.split(","):
        for method in ("projection", "pti", "nerfinvertor"):
            G = build_generator(kwargs, args.nrr).eval().to(device)
            G.load_state_dict(base.state_dict())
            G.renderer = ImportanceRenderer(ops=ops)
            w = base.w_avg.view(1, 1, -1).expand(1, G.num_ws, -1).clone()
            if method == "projection":
                r = inversion.project(G, target, mode="w", steps=args.steps, loss=loss, w_std_samples=100)
            elif method == "pti":
                r = inversion.pivotal_tuning(G, target, w, steps=args.steps, loss=loss, early_stop_lpips=None)
            else:
                r = inversion.nerfinvertor_tuning(G, target, w, steps=args.steps, loss=loss,
                                                  explicit_resolution=args.explicit_resolution)
            per_step[(ops, method)] = step_seconds(r)
            print(f"{ops:9s} {method:12s} {per_step[(ops, method)]:.2f} s/step", flush=True)
    ops_list = args.ops.split(",")
    for method in FULL_SCHEDULE:
        row = {"device": device_name(device), "method": method, "nrr": args.nrr}
        for ops in ops_list:
            row[f"{ops} s/step"] = per_step[(ops, method)]
        for a, b in (("fused", "kernels"), ("fused", "reference"), ("kernels", "reference")):
            if a in ops_list and b in ops_list:
                row[f"{a} vs {b}"] = per_step[(b, method)] / per_step[(a, method)]
        rows.append(row)
    notes = [f"perceptual: {loss.perceptual_name}; NeRFInvertor explicit term "
             f"{args.explicit_resolution}^2 rays x G's own coarse + importance "
             f"samples, K = V = 1; {args.steps} timed step(s) per cell (the first step includes warm-up)."]
    for ops in ops_list:
        proj = FULL_SCHEDULE["projection"] * per_step[(ops, "projection")]
        pti = proj + FULL_SCHEDULE["pti"] * per_step[(ops, "pti")]
        ni = proj + FULL_SCHEDULE["nerfinvertor"] * per_step[(ops, "nerfinvertor")]
        notes.append(f"projected full schedule with {ops} ops: projection 500 steps {proj / 60:.1f} min; "
                     f"+ PTI 350 steps {pti / 60:.1f} min; + NeRFInvertor 1000 steps {ni / 60:.1f} min "
                     f"(paper: ~30 min for NeRFInvertor on a V100)")
    return emit("Inversion time per step, EG3D FFHQ-512 random weights, batch 1, fp32", rows, notes, out=args.out)


if __name__ == "__main__":
    main()
