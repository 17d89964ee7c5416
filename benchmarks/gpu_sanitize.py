"""Every CUDA kernel once, forward and backward, on small random inputs: the workload that
benchmarks/run_gpu_checks.sh runs under compute-sanitizer (memcheck, racecheck, synccheck,
initcheck). Far lighter than pytest under the sanitizer; exits 1 when a result differs from the
CPU kernel, so a kernel that is wrong without touching bad memory fails too.

    compute-sanitizer --tool memcheck --error-exitcode 1 python3 benchmarks/gpu_sanitize.py
"""

from __future__ import annotations

import sys

import torch

import nerfgan_kernels


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max().item() if b.numel() else 1.0
    return ((a.double().cpu() - b.double()).abs().max().item() / max(scale, 1e-30)) if b.numel() else 0.0


def grads_of(fn, inputs, device):
    """Outputs of fn and the gradients of sum(out ** 2) over its outputs, on the CPU."""
    xs = [x.detach().to(device).requires_grad_(True) for x in inputs]
    out = fn(*xs)
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if o.requires_grad]
    grads = torch.autograd.grad(sum((o.float() ** 2).sum() for o in outs), xs, allow_unused=True)
    return [o.detach().cpu() for o in outs], [None if x is None else x.cpu() for x in grads]


def check(name, fn, inputs, tol=1e-4) -> bool:
    out_gpu, g_gpu = grads_of(fn, inputs, "cuda")
    out_cpu, g_cpu = grads_of(fn, inputs, "cpu")
    errs = [rel(a, b) for a, b in zip(out_gpu + g_gpu, out_cpu + g_cpu) if a is not None]
    ok = all(e <= tol for e in errs)
    print(f"{name:28s} max rel err {max(errs, default=0):.2e} {'ok' if ok else 'WRONG'}")
    return ok


def main() -> int:
    if not torch.cuda.is_available() or not nerfgan_kernels.cuda_available():
        print("needs a GPU and the CUDA kernels")
        return 2
    g = torch.Generator().manual_seed(0)
    ok = True
    planes = torch.randn(2, 3, 7, 9, 13, generator=g)
    coords = (torch.rand(2, 300, 3, generator=g) * 2 - 1) * 0.7
    for reduce in ("none", "mean"):
        ok &= check(f"triplane_sample {reduce}",
                    lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, reduce),
                    [planes, coords])
    colors = torch.rand(2, 50, 24, 5, generator=g)
    densities = torch.randn(2, 50, 24, 1, generator=g) * 3 + 1
    depths = torch.sort(2.25 + torch.rand(2, 50, 24, 1, generator=g), dim=2).values
    for kw in (dict(t_min=0.0, alpha_min=0.0), dict(t_min=1e-2, alpha_min=1e-3)):
        ok &= check(f"composite t_min={kw['t_min']}",
                    lambda c, s: nerfgan_kernels.composite(c, s, depths.to(c.device), **kw),
                    [colors, densities])
    weights = torch.rand(2, 50, 23, 1, generator=g) ** 4
    fine = nerfgan_kernels.sample_pdf(depths.cuda(), weights.cuda(), 17, deterministic=True)
    fine_cpu = nerfgan_kernels.sample_pdf(depths, weights, 17, deterministic=True)
    err = rel(fine, fine_cpu)
    print(f"{'sample_pdf':28s} max rel err {err:.2e} {'ok' if err <= 1e-5 else 'WRONG'}")
    ok &= err <= 1e-5
    ok &= check("merge_samples",
                lambda a, b: nerfgan_kernels.merge_samples(depths.to(a.device), [a],
                                                           fine_cpu.to(a.device), [b])[1][0],
                [colors, torch.rand(2, 50, 17, 5, generator=g)])
    for dtype in (torch.float16, torch.bfloat16):
        p_h, c_h = planes.to(dtype), coords.to(dtype)
        out = nerfgan_kernels.triplane_sample(p_h.cuda(), c_h.cuda(), 1.0, "mean").float().cpu()
        err = rel(out, nerfgan_kernels.triplane_sample(p_h.float(), c_h.float(), 1.0, "mean"))
        print(f"{'triplane_sample ' + str(dtype)[6:]:28s} max rel err {err:.2e} "
              f"{'ok' if err <= 2e-2 else 'WRONG'}")
        ok &= err <= 2e-2
    torch.cuda.synchronize()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
