"""Benchmark triplane_sample (kernel) against the PyTorch reference (EG3D's grid_sample way).

EG3D-sized work: planes (1, 3, 32, 256, 256), 128 x 128 rays x 96 samples = 1,572,864 points.

    python benchmarks/bench_triplane.py [--device cpu|cuda|all] [--repeats 5] [--out FILE.md]
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (bench_args, device_name, emit, kernel_path, kernel_paths,  # noqa: E402
                    peak_memory_mb, selected_devices, time_fn)

import nerfgan_kernels  # noqa: E402
from nerfgan_kernels.ops import _reference  # noqa: E402


def make_inputs(device, dtype, batch=1, res=256, channels=32, points=128 * 128 * 96):
    g = torch.Generator().manual_seed(0)
    planes = torch.randn(batch, 3, channels, res, res, generator=g).to(device, dtype)
    coords = (torch.rand(batch, points, 3, generator=g) - 0.5).to(device, dtype)
    return planes, coords


def bench(device: torch.device, dtype: torch.dtype, repeats: int) -> list[dict]:
    planes, coords = make_inputs(device, dtype)
    impls = {"reference": (_reference.triplane_sample, None)}
    for path in kernel_paths(device):
        impls["kernel" + (f" ({path})" if path else "")] = (nerfgan_kernels.triplane_sample, path)
    times = {}
    for name, (fn, path) in impls.items():
        def fwd():
            with torch.no_grad():
                fn(planes, coords, 1.0, "mean")

        p = planes.detach().requires_grad_(True)
        c = coords.detach().requires_grad_(True)

        def fwd_bwd():
            out = fn(p, c, 1.0, "mean")
            torch.autograd.grad(out, (p, c), torch.ones_like(out))

        with kernel_path(path):
            times[name] = (time_fn(fwd, device, repeats), time_fn(fwd_bwd, device, repeats),
                           peak_memory_mb(fwd_bwd, device))
    rows = []
    ref_f, ref_fb = times["reference"][:2]
    for name, (f, fb, mem) in times.items():
        if name == "reference":
            continue
        row = {"device": device_name(device), "dtype": str(dtype).replace("torch.", ""),
               "impl": name, "fwd ms": f, "ref fwd ms": ref_f, "fwd speed-up": ref_f / f,
               "fwd+bwd ms": fb, "ref fwd+bwd ms": ref_fb, "fwd+bwd speed-up": ref_fb / fb}
        if mem is not None:
            row["peak MiB kernel / ref"] = f"{mem:.0f} / {times['reference'][2]:.0f}"
        rows.append(row)
    return rows


def main(argv=None) -> str:
    args = bench_args(__doc__, argv=argv)
    rows = []
    for device in selected_devices(args.device):
        for dtype in ([torch.float32] if device.type == "cpu" else [torch.float32, torch.float16]):
            rows += bench(device, dtype, args.repeats)
    return emit("triplane_sample: planes 3x32x256x256, 1,572,864 points, reduce=mean", rows,
                out=args.out)


if __name__ == "__main__":
    main()
