"""Benchmark the fused renderer (render_triplane) against the per-op kernels chain and the
reference chain, at EG3D size: planes (1, 3, 32, 256, 256), 128 x 128 rays, 96 samples per ray
(the merged 48 + 48 of the importance render), the head-like scene of bench_render.py.

For each of "fused" (one op), "kernels" (triplane_sample kernel + the decoder in PyTorch +
composite kernel) and "reference" (the same chain on the PyTorch references), exact and masked
(t_min = 1e-4, alpha_min = 1e-6): forward and forward+backward time (gradients to the planes and
the decoder), and on the CPU the peak RSS of one forward+backward above the RSS once the inputs
exist (Linux: VmHWM reset through /proc/self/clear_refs).

    python benchmarks/bench_fused.py [--device cpu|cuda|all] [--repeats 3] [--rays 16384] [--out FILE.md]
"""

from __future__ import annotations

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_render import make_scene  # noqa: E402
from common import bench_args, device_name, emit, peak_memory_mb, selected_devices, time_fn  # noqa: E402

import nerfgan_kernels  # noqa: E402
from nerfgan_kernels import TriplaneDecoder  # noqa: E402
from nerfgan_kernels.ops import _reference  # noqa: E402

SAMPLES = 96
MASKED = dict(t_min=1e-4, alpha_min=1e-6)
EXACT = dict(t_min=0.0, alpha_min=0.0)


def chain(ops):
    """render_triplane as the chain of separate ops (``ops``: the package or _reference)."""
    def render(planes, decoder, origins, directions, depths, **kw):
        N, R, S, _ = depths.shape
        coords = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(N, R * S, 3)
        colors, densities = _reference.decode_features(
            ops.triplane_sample(planes, coords, 1.0, "mean"), decoder)
        rgb, depth, weights = ops.composite(colors.reshape(N, R, S, -1),
                                            densities.reshape(N, R, S, 1), depths, **kw)
        return rgb, depth, weights, weights.sum(2)
    return render


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_rss_mib(fn) -> float | None:
    """Peak RSS of fn() above the RSS before it, MiB (None where Linux's counters are absent)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        before = _rss_kib("VmRSS:")
    except OSError:
        return None
    fn()
    return (_rss_kib("VmHWM:") - before) / 1024


def bench(device, repeats, rays):
    planes, module, origins, directions = make_scene(device)
    res = int(math.isqrt(rays))
    origins, directions = origins[:, :res * res], directions[:, :res * res]
    t = torch.linspace(0, 1, SAMPLES, device=device)
    depths = (2.25 + (3.3 - 2.25) * t).view(1, 1, SAMPLES, 1).expand(1, origins.shape[1], SAMPLES, 1)
    depths = depths.contiguous()
    decoder = TriplaneDecoder.from_module(module)
    decoder = TriplaneDecoder(*(x.detach() for x in decoder.tensors()))
    # The kernels read channels-last planes; every impl gets them in that layout.
    planes = planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    impls = {"fused": nerfgan_kernels.render_triplane, "kernels": chain(nerfgan_kernels),
             "reference": chain(_reference)}
    rows, times = [], {}
    for name, fn in impls.items():
        for mode, kw in (("exact", EXACT), ("masked", MASKED)):
            def fwd():
                with torch.no_grad():
                    fn(planes, decoder, origins, directions, depths, **kw)

            def fwd_bwd():
                p = planes.detach().requires_grad_(True)
                dec = TriplaneDecoder(*(x.requires_grad_(True) for x in
                                        (y.detach().clone() for y in decoder.tensors())))
                rgb, depth, _, ws = fn(p, dec, origins, directions, depths, **kw)
                torch.autograd.grad(rgb.sum() + depth.sum() + ws.sum(), (p, *dec.tensors()))

            f, fb = time_fn(fwd, device, repeats), time_fn(fwd_bwd, device, repeats)
            mem = peak_memory_mb(fwd_bwd, device) if device.type == "cuda" else peak_rss_mib(fwd_bwd)
            times[name, mode] = (f, fb)
            rows.append({"device": device_name(device), "impl": name, "mode": mode, "fwd ms": f,
                         "fwd+bwd ms": fb, "peak MiB": mem})
    for row in rows:
        f, fb = times["kernels", row["mode"]]
        rf, rfb = times["reference", row["mode"]]
        row["fwd+bwd vs kernels"] = fb / row["fwd+bwd ms"]
        row["fwd+bwd vs reference"] = rfb / row["fwd+bwd ms"]
    return rows


def main(argv=None) -> str:
    args = bench_args(__doc__, argv=argv,
                      extra=lambda p: p.add_argument("--rays", type=int, default=128 * 128))
    rows = []
    for device in selected_devices(args.device):
        rows += bench(device, args.repeats, args.rays)
    return emit(f"render_triplane: planes 3x32x256x256, {args.rays} rays x {SAMPLES} samples",
                rows, out=args.out)


if __name__ == "__main__":
    main()
