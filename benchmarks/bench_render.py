"""Benchmark the whole importance render (ImportanceRenderer) on the fused renderer
(render_triplane, ops="fused") and on the per-op kernels (ops="kernels") against the same
renderer running the PyTorch reference ops (EG3D's way: grid_sample, torch marcher, sort).

EG3D size: planes (1, 3, 32, 256, 256), 128 x 128 rays, 48 + 48 samples, 32 channels, an OSG
decoder with random weights except for a density that makes a head-like opaque blob in empty
space (see make_scene). Also reports how many march intervals density masking skips.

    python benchmarks/bench_render.py [--device cpu|cuda|all] [--repeats 3] [--out FILE.md]

About 2.5 minutes on 2 CPU cores (the reference forward+backward dominates).
"""

from __future__ import annotations

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bench_args, device_name, emit, peak_memory_mb, selected_devices, time_fn  # noqa: E402

from nerfgan_kernels.render import ImportanceRenderer, OSGDecoder, camera_rays, look_at_camera  # noqa: E402

OPTIONS = dict(ray_start=2.25, ray_end=3.3, box_warp=1.0, depth_resolution=48,
               depth_resolution_importance=48, disparity_space_sampling=False,
               clamp_mode="softplus", deterministic=True)
MASKED = dict(t_min=1e-4, alpha_min=1e-6)  # composite's default thresholds


def make_scene(device, res=256, nrr=128, seed=0):
    """A head-like volume: empty space (raw sigma about -9) around an opaque blob (sigma about
    30) where all three planes' channel 0 holds a disk; random texture in the other channels and
    a random decoder for the colour features."""
    g = torch.Generator().manual_seed(seed)
    planes = torch.randn(1, 3, 32, res, res, generator=g) * 0.5
    axis = torch.linspace(-1, 1, res)
    radius = torch.hypot(axis[:, None], axis[None, :])
    planes[:, :, 0] = torch.tanh(10 * (0.6 - radius))
    torch.manual_seed(seed)
    decoder = OSGDecoder(32)
    with torch.no_grad():  # sigma = 2 * softplus(20 * mean channel 0) - 10 (equalized gains undone)
        fc0, _, fc1 = decoder.net
        fc0.weight[0].zero_()
        fc0.weight[0, 0] = 20 / fc0.weight_gain
        fc0.bias[0] = 0
        fc1.weight[0].zero_()
        fc1.weight[0, 0] = 2 / fc1.weight_gain
        fc1.bias[0] = -10
    origins, directions = camera_rays(look_at_camera(math.pi / 2 + 0.2, math.pi / 2 - 0.1), nrr)
    return planes.to(device), decoder.to(device), origins.to(device), directions.to(device)


def bench(device, repeats):
    planes, decoder, origins, directions = make_scene(device)
    impls = {"reference ops": (ImportanceRenderer("reference"), OPTIONS),
             "kernels (exact)": (ImportanceRenderer("kernels"), OPTIONS),
             "kernels (masked)": (ImportanceRenderer("kernels"), dict(OPTIONS, **MASKED)),
             "fused (exact)": (ImportanceRenderer("fused"), OPTIONS),
             "fused (masked)": (ImportanceRenderer("fused"), dict(OPTIONS, **MASKED))}
    results, outputs = {}, {}
    for name, (renderer, options) in impls.items():
        def fwd(renderer=renderer, options=options):
            with torch.no_grad():
                return renderer(planes, decoder, origins, directions, options)

        p = planes.detach().requires_grad_(True)

        def fwd_bwd(renderer=renderer, options=options, p=p):
            rgb, depth, wsum = renderer(p, decoder, origins, directions, options)
            (rgb.sum() + depth.sum() + wsum.sum()).backward()

        outputs[name] = fwd()  # also the warm-up of both passes
        results[name] = (time_fn(fwd, device, repeats, warmup=0),
                         time_fn(fwd_bwd, device, repeats),
                         peak_memory_mb(fwd_bwd, device))
    ref_f, ref_fb = results["reference ops"][:2]
    rows = []
    ref_rgb, ref_depth, ref_wsum = outputs["reference ops"]
    visible = ref_wsum >= 0.5  # depth is a weighted mean: on near-empty rays it is ill-conditioned
    for name, (f, fb, mem) in results.items():
        rgb, depth, wsum = outputs[name]
        row = {"device": device_name(device), "renderer": name, "fwd ms": f, "fwd+bwd ms": fb,
               "fwd speed-up": ref_f / f, "fwd+bwd speed-up": ref_fb / fb,
               "rgb max err": (rgb - ref_rgb).abs().max().item(),
               "weight sum max err": (wsum - ref_wsum).abs().max().item(),
               "depth max err (W>=0.5)": (depth - ref_depth)[visible].abs().max().item()}
        mode = "masked" if "masked" in name else "exact"
        row["fwd+bwd vs kernels"] = results[f"kernels ({mode})"][1] / fb
        if mem is not None:
            row["peak MiB"] = mem
        rows.append(row)

    # Skipped march intervals (zero weight) in the final 95-interval march, exact vs masked.
    notes = []
    with torch.no_grad():
        for name, extra in [("exact", {}), ("masked", MASKED)]:
            weights = ImportanceRenderer()(planes, decoder, origins, directions,
                                           dict(OPTIONS, return_samples=True, **extra))[3]["weights"]
            zero = (weights == 0).sum().item() / weights.numel()
            notes.append(f"{name}: {100 * zero:.1f}% of the final march's intervals have weight 0")
        notes.append(f"{100 * visible.float().mean().item():.0f}% of the rays have a weight sum >= 0.5")
    return rows, notes


def main(argv=None) -> str:
    args = bench_args(__doc__, repeats=3, argv=argv)
    rows, notes = [], []
    for device in selected_devices(args.device):
        r, n = bench(device, args.repeats)
        rows += r
        notes += [f"{device_name(device)}, density masking t_min={MASKED['t_min']}, "
                  f"alpha_min={MASKED['alpha_min']}: {x}" for x in n]
    return emit("ImportanceRenderer: planes 1x3x32x256x256, 128x128 rays, 48+48 samples, "
                "32 channels (deterministic sampling)", rows, notes, args.out)


if __name__ == "__main__":
    main()
