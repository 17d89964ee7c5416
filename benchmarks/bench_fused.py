"""Benchmark the fused renderer (render_triplane) against the per-op kernels chain and the
reference chain, at EG3D size: planes (1, 3, 32, 256, 256), 128 x 128 rays, 96 samples per ray
(the merged 48 + 48 of the importance render), the head-like scene of bench_render.py.

For each of "fused" (one op), "kernels" (triplane_sample kernel + the decoder in PyTorch +
composite kernel) and "reference" (the same chain on the PyTorch references), exact and masked
(t_min = 1e-4, alpha_min = 1e-6): forward and forward+backward time (gradients to the planes and
the decoder), and on the CPU the peak RSS of one forward+backward above the RSS once the inputs
exist (Linux: VmHWM reset through /proc/self/clear_refs).

Second table: the whole importance render (``ImportanceRenderer``, ops "fused" / "kernels" /
"reference", default budget, no checkpointing) on the embedded default generator's own planes
and decoder (training item 0, 128 x 128 rays from the first held-out camera, its own 24 + 24
samples and EG3D's 48 + 48), fwd+bwd to the planes and the decoder's parameters, with the fraction of the final
pass's decoder evaluations the masked march skips.

    python benchmarks/bench_fused.py [--device cpu|cuda|all] [--repeats 3] [--rays 16384] [--out FILE.md]
"""

from __future__ import annotations

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_render import make_scene  # noqa: E402
from common import bench_args, device_name, emit, peak_memory, selected_devices, time_fn  # noqa: E402

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

            mem = peak_memory(fwd_bwd, device)
            f, fb = time_fn(fwd, device, repeats), time_fn(fwd_bwd, device, repeats)
            times[name, mode] = (f, fb)
            rows.append({"device": device_name(device), "impl": name, "mode": mode, "fwd ms": f,
                         "fwd+bwd ms": fb, "peak MiB": mem})
    for row in rows:
        f, fb = times["kernels", row["mode"]]
        rf, rfb = times["reference", row["mode"]]
        row["fwd+bwd vs kernels"] = fb / row["fwd+bwd ms"]
        row["fwd+bwd vs reference"] = rfb / row["fwd+bwd ms"]
    return rows


def skipped_fraction(weights: torch.Tensor, t_min: float) -> float:
    """Fraction of samples (N, R, S-1, 1 weights) a march with ``t_min`` never decodes: ray
    samples after the first interval whose transmittance is below t_min."""
    w = weights.squeeze(-1).double()
    trans_before = 1 - torch.cumsum(w, -1) + w  # transmittance in front of each interval
    S = w.shape[-1] + 1
    dead = trans_before < t_min
    first = torch.where(dead.any(-1), dead.float().argmax(-1), torch.full_like(w[..., 0], S - 1).long())
    decoded = torch.clamp(first + 1, max=S)
    return 1 - decoded.sum().item() / (S * decoded.numel())


def bench_generator_render(device, repeats, samples=None):
    """ImportanceRenderer fused / kernels / reference on the default generator (rows); samples
    (D, n) overrides its coarse + importance sample counts (EG3D's are 48 + 48)."""
    from inversion.data.train_default import held_out_cameras, item_z

    from nerfgan_kernels.models import load_generator
    from nerfgan_kernels.render import ImportanceRenderer
    from nerfgan_kernels.render.rays import camera_rays

    G = load_generator("default").to(device)
    with torch.no_grad():
        ws = G.mapping(item_z(0, G.z_dim)[None].to(device), torch.zeros(1, 25, device=device))
        planes = G.planes(ws).detach()
    origins, directions = camera_rays(held_out_cameras()[:1].to(device), 128)
    rows, times = [], {}
    for ops in ("fused", "kernels", "reference"):
        renderer = ImportanceRenderer(ops=ops)
        for mode, kw in (("exact", EXACT), ("masked", MASKED)):
            options = G.render_options(True, **kw)
            if samples is not None:
                options.update(depth_resolution=samples[0], depth_resolution_importance=samples[1])

            def fwd():
                with torch.no_grad():
                    return renderer(planes, G.decoder, origins, directions, options)

            def fwd_bwd():
                p = planes.detach().requires_grad_(True)
                rgb, depth, ws_ = renderer(p, G.decoder, origins, directions, options)
                torch.autograd.grad(rgb.sum() + depth.sum() + ws_.sum(),
                                    (p, *G.decoder.parameters()))

            mem = peak_memory(fwd_bwd, device)
            f, fb = time_fn(fwd, device, repeats), time_fn(fwd_bwd, device, repeats)
            times[ops, mode] = fb
            D, n = options["depth_resolution"], options["depth_resolution_importance"]
            row = {"device": device_name(device), "samples": f"{D} + {n}", "impl": ops,
                   "mode": mode, "fwd ms": f,
                   "fwd+bwd ms": fb, "peak MiB": mem, "decoder evals skipped": "-"}
            if mode == "masked" and ops == "fused":
                with torch.no_grad():
                    per_sample = renderer(planes, G.decoder, origins, directions,
                                          dict(options, return_samples=True))[3]
                row["decoder evals skipped"] = skipped_fraction(per_sample["weights"],
                                                                MASKED["t_min"])
            rows.append(row)
    for row in rows:  # one sample count per call: the ratios are within it
        row["fwd+bwd vs kernels"] = times["kernels", row["mode"]] / row["fwd+bwd ms"]
        row["fwd+bwd vs reference"] = times["reference", row["mode"]] / row["fwd+bwd ms"]
    return rows


def main(argv=None) -> str:
    args = bench_args(__doc__, argv=argv,
                      extra=lambda p: p.add_argument("--rays", type=int, default=128 * 128))
    rows, gen_rows = [], []
    for device in selected_devices(args.device):
        rows += bench(device, args.repeats, args.rays)
        gen_rows += bench_generator_render(device, args.repeats)
        gen_rows += bench_generator_render(device, args.repeats, samples=(48, 48))
    text = emit(f"render_triplane: planes 3x32x256x256, {args.rays} rays x {SAMPLES} samples",
                rows, out=args.out)
    return text + emit("ImportanceRenderer on the default generator (item 0, held-out camera, "
                       "128x128 rays; its own 24 + 24 samples and EG3D's 48 + 48)", gen_rows,
                       out=args.out)


if __name__ == "__main__":
    main()
