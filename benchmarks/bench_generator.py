"""One full EG3D-512 generator forward (FFHQ configuration, random weights, batch 1), with the
renderer fused (render_triplane, the default), on the per-op kernels and on the PyTorch
reference ops, side by side in one run.

    python benchmarks/bench_generator.py [--device cpu|cuda] [--repeats 2] [--nrr 128] [--out FILE.md]
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bench_args, device_name, emit, time_fn  # noqa: E402

from nerfgan_kernels.models import build_generator  # noqa: E402
from nerfgan_kernels.render import ImportanceRenderer, look_at_camera  # noqa: E402

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "ffhq512_manifest.json")


def main(argv=None) -> str:
    args = bench_args(__doc__, repeats=2, devices=("cpu", "cuda"), default_device="cpu", argv=argv,
                      extra=lambda ap: ap.add_argument("--nrr", type=int, default=128,
                                                       help="neural rendering resolution"))
    device = torch.device(args.device)
    torch.manual_seed(0)
    G = build_generator(json.load(open(MANIFEST))["generator_kwargs"], args.nrr).eval().to(device)
    z = torch.randn(1, G.z_dim, device=device)
    c = look_at_camera(torch.tensor([0.3]), torch.tensor([0.1])).to(device)
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
    rows, times = [], {}
    for ops in ("fused", "kernels", "reference"):
        G.renderer = ImportanceRenderer(ops=ops)

        def fwd():
            with torch.no_grad():
                G.synthesis(ws, c)

        def fwd_bwd():
            out = G.synthesis(ws.detach().requires_grad_(True), c)
            out["image"].square().mean().backward()

        times[ops] = (time_fn(fwd, device, args.repeats), time_fn(fwd_bwd, device, args.repeats, warmup=0))
    for i, what in enumerate(["synthesis forward", "synthesis forward+backward"]):
        f, k, r = times["fused"][i], times["kernels"][i], times["reference"][i]
        rows.append({"device": device_name(device), "work": f"{what} (nrr {args.nrr})",
                     "fused ms": f, "kernels ms": k, "reference ops ms": r,
                     "fused vs kernels": k / f, "fused vs reference": r / f,
                     "kernels vs reference": r / k})
    return emit("EG3D FFHQ-512 generator, batch 1, fp32", rows, out=args.out)


if __name__ == "__main__":
    main()
