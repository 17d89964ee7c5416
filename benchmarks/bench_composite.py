"""Benchmark composite (ray marcher kernel, exact and with density masking) against the reference.

EG3D size: 128 x 128 rays, 96 samples (48 + 48), 32 channels. Densities describe a surface per
ray (empty space, a dense shell, occluded samples) so that masking has something to skip.

    python benchmarks/bench_composite.py [--device cpu|cuda|all] [--repeats 5] [--out FILE.md]
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


def make_inputs(device, dtype, rays=128 * 128, samples=96, channels=32):
    g = torch.Generator().manual_seed(0)
    colors = torch.rand(1, rays, samples, channels, generator=g) * 1.002 - 0.001
    depths = torch.sort(2.25 + 1.05 * torch.rand(1, rays, samples, 1, generator=g), dim=2).values
    surface = torch.rand(1, rays, 1, 1, generator=g) * 1.2 - 0.6
    t = torch.linspace(-1, 1, samples).view(1, 1, samples, 1)
    densities = 40 * torch.sigmoid((t - surface) * 20) - 20 + torch.randn(1, rays, samples, 1, generator=g)
    return [x.to(device, dtype) for x in (colors, densities, depths)]


def bench(device, dtype, repeats):
    colors, densities, depths = make_inputs(device, dtype)
    impls = {"reference": (lambda c, s: _reference.composite(c, s, depths), None)}
    for path in kernel_paths(device):
        tag = f", {path}" if path else ""
        impls[f"kernel (exact{tag})"] = (
            lambda c, s: nerfgan_kernels.composite(c, s, depths, t_min=0.0, alpha_min=0.0), path)
        impls[f"kernel (masked{tag})"] = (lambda c, s: nerfgan_kernels.composite(c, s, depths), path)
    results = {}
    for name, (fn, path) in impls.items():
        def fwd():
            with torch.no_grad():
                fn(colors, densities)

        c = colors.detach().requires_grad_(True)
        s = densities.detach().requires_grad_(True)

        def fwd_bwd():
            rgb, depth, _ = fn(c, s)
            torch.autograd.grad(rgb.sum() + depth.sum(), (c, s))

        with kernel_path(path):
            results[name] = (time_fn(fwd, device, repeats), time_fn(fwd_bwd, device, repeats),
                             peak_memory_mb(fwd_bwd, device))
    kept = nerfgan_kernels.composite(colors, densities, depths, return_stats=True)[3]
    skipped = 1 - kept.sum().item() / kept.numel() / (colors.shape[2] - 1)
    ref_f, ref_fb = results["reference"][:2]
    rows = []
    for name, (f, fb, mem) in results.items():
        row = {"device": device_name(device), "dtype": str(dtype).replace("torch.", ""),
               "impl": name, "fwd ms": f, "fwd+bwd ms": fb, "fwd speed-up": ref_f / f,
               "fwd+bwd speed-up": ref_fb / fb}
        if mem is not None:
            row["peak MiB"] = mem
        rows.append(row)
    return rows, skipped


def main(argv=None) -> str:
    args = bench_args(__doc__, argv=argv)
    rows, notes = [], []
    for device in selected_devices(args.device):
        r, skipped = bench(device, torch.float32, args.repeats)
        rows += r
        notes.append(f"{device_name(device)}: density masking (t_min=1e-4, alpha_min=1e-6) "
                     f"skipped {100 * skipped:.1f}% of the intervals")
    return emit("composite: 16,384 rays x 96 samples x 32 channels", rows, notes, args.out)


if __name__ == "__main__":
    main()
