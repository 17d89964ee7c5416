"""The ops as torch.library ops: schemas, fake kernels and autograd (opcheck), torch.compile.

opcheck runs each op on real and fake tensors, through make_fx / AOT dispatch with dynamic shapes,
and checks the autograd registration; the sample inputs cover broadcasting, non-contiguous
views, gradients required on only some inputs and float64.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess

import pytest
import torch

import nerfgan_kernels
from nerfgan_kernels import _ext
from nerfgan_kernels.ops import _reference
from nerfgan_kernels.render import ImportanceRenderer
from nerfgan_kernels.render.decoder import OSGDecoder
from helpers import rel_err
from test_composite import random_rays
from test_importance import coarse_inputs, merge_inputs, random_u
from test_triplane_sample import random_inputs as triplane_inputs

pytestmark = pytest.mark.skipif(not _ext.extension_available(), reason="extension not built")
OPS = torch.ops.nerfgan_kernels


def devices():
    out = ["cpu"]
    if torch.cuda.is_available() and _ext.cuda_available():
        out.append("cuda")
    return out


def strided(t: torch.Tensor) -> torch.Tensor:
    """The same values as a non-contiguous view (every other element of a wider tensor)."""
    wide = torch.empty(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
    wide[..., ::2] = t
    view = wide[..., ::2]
    assert not view.is_contiguous() or t.shape[-1] <= 1
    return view


def grad_on(t: torch.Tensor, flag: bool) -> torch.Tensor:
    return t.detach().requires_grad_(flag)


# ---- sample inputs of each op: (name, args)

def triplane_samples(device):
    for (Np, Nc), dtype, reduce, (gp, gc), view in [
        ((1, 1), torch.float32, "none", (True, True), False),
        ((1, 3), torch.float32, "mean", (True, False), False),
        ((2, 1), torch.float64, "sum", (False, True), True),
        ((2, 2), torch.float32, "mean", (True, True), True),
    ]:
        planes, coords = triplane_inputs(Np, Nc, 5, 6, 7, 11, dtype=dtype)
        planes, coords = planes.to(device), coords.to(device)
        if view:
            planes, coords = planes.transpose(3, 4).contiguous().transpose(3, 4), strided(coords)
        yield (grad_on(planes, gp), grad_on(coords, gc), 1.3, reduce)


def composite_samples(device):
    for (N, R, S, C), dtype, grads, view, masking in [
        ((1, 4, 9, 3), torch.float32, (True, True), False, (0.0, 0.0)),
        ((2, 3, 6, 4), torch.float64, (True, False), True, (1e-3, 1e-4)),
        ((1, 5, 1, 2), torch.float32, (False, True), False, (0.0, 0.0)),
    ]:
        colors, densities, depths = (t.to(device) for t in random_rays(N, R, S, C, dtype=dtype))
        if view:
            colors, densities = strided(colors), densities.transpose(0, 1).contiguous().transpose(0, 1)
        lo_hi = torch.stack([depths.min(), depths.max()])
        yield (grad_on(colors, grads[0]), grad_on(densities, grads[1]), depths, lo_hi, view,
               *masking)


def sample_pdf_samples(device):
    for dtype, u_shape in [(torch.float32, "rows"), (torch.float64, "shared")]:
        depths, weights = (t.to(device) for t in coarse_inputs(2, 3, 8, dtype=dtype))
        u = random_u(2, 3, 5, dtype=dtype).to(device)
        if u_shape == "shared":
            u = torch.linspace(0, 1, 5, dtype=dtype, device=device)
        yield (depths, grad_on(weights, True), u)


def merge_samples(device):
    for dtype, view in [(torch.float32, False), (torch.float64, True)]:
        depths_a, values_a, depths_b, values_b = merge_inputs(2, 3, 6, 4, dtype=dtype)
        depths_a, depths_b = depths_a.to(device), depths_b.to(device)
        _, index = OPS.merge_samples_index(depths_a, depths_b)
        va, vb = values_a[-1].to(device), values_b[-1].to(device)
        if view:
            va = strided(va)
        yield "index", (depths_a, depths_b)
        yield "gather", (index, grad_on(va, True), grad_on(vb, not view))


@pytest.mark.parametrize("device", devices())
def test_opcheck_triplane_sample(device):
    for args in triplane_samples(device):
        torch.library.opcheck(OPS.triplane_sample, args)
        planes, coords, box_warp, reduce = args
        out = OPS.triplane_sample(planes.detach(), coords.detach(), box_warp, reduce)
        torch.library.opcheck(OPS.triplane_sample_backward,
                              (torch.randn_like(out), planes.detach(), coords.detach(), box_warp,
                               reduce, planes.requires_grad, coords.requires_grad))


@pytest.mark.parametrize("device", devices())
def test_opcheck_composite(device):
    for args in composite_samples(device):
        torch.library.opcheck(OPS.composite, args)
        colors, densities, depths, lo_hi, white_back, t_min, alpha_min = args
        rgb, depth, weights, stats = OPS.composite(colors.detach(), densities.detach(), depths,
                                                   lo_hi, white_back, t_min, alpha_min)
        grads = (torch.randn_like(rgb), torch.randn_like(depth), torch.randn_like(weights))
        torch.library.opcheck(OPS.composite_backward,
                              (*grads, colors.detach(), densities.detach(), depths, lo_hi, stats,
                               white_back, t_min, alpha_min))


@pytest.mark.parametrize("device", devices())
def test_opcheck_importance_ops(device):
    for args in sample_pdf_samples(device):
        torch.library.opcheck(OPS.sample_pdf, args)
    for kind, args in merge_samples(device):
        if kind == "index":
            torch.library.opcheck(OPS.merge_samples_index, args)
            continue
        torch.library.opcheck(OPS.merge_gather, args)
        index, va, vb = args
        out = OPS.merge_gather(index, va.detach(), vb.detach())
        torch.library.opcheck(OPS.merge_gather_backward,
                              (torch.randn_like(out), index, va.shape[2], vb.shape[2], True, False))


def test_importance_ops_are_not_differentiable():
    depths, weights = coarse_inputs(1, 2, 8)
    fine = OPS.sample_pdf(depths, weights.requires_grad_(True), random_u(1, 2, 4))
    assert not fine.requires_grad
    merged, index = OPS.merge_samples_index(depths.requires_grad_(True), fine)
    assert not merged.requires_grad and index.dtype == torch.int64


def test_double_backward_raises_clearly():
    planes, coords = triplane_inputs(1, 1, 4, 5, 5, 7)
    planes.requires_grad_(True)
    out = nerfgan_kernels.triplane_sample(planes, coords, 1.0, "mean")
    (grad,) = torch.autograd.grad(out.square().sum(), planes, create_graph=True)
    with pytest.raises(RuntimeError, match="once differentiable"):
        grad.sum().backward()


def test_ops_are_registered_for_the_dispatcher():
    """C++ users reach the same kernels through the dispatcher: the schemas are there."""
    names = {"triplane_sample", "triplane_sample_backward", "composite", "composite_backward",
             "sample_pdf", "merge_samples_index", "merge_gather", "merge_gather_backward",
             "render_triplane", "render_triplane_backward", "decode_triplane",
             "decode_triplane_backward"}
    for name in names:
        schema = torch._C._dispatch_find_schema_or_throw(f"nerfgan_kernels::{name}", "")
        assert schema is not None
    assert torch._C._dispatch_has_kernel_for_dispatch_key("nerfgan_kernels::triplane_sample", "CPU")


# ---- torch.compile of EG3D's importance render

def small_scene(seed=0):
    g = torch.Generator().manual_seed(seed)
    decoder = OSGDecoder(n_features=8, hidden_dim=16, decoder_output_dim=4)
    with torch.no_grad():
        for p in decoder.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    planes = torch.randn(1, 3, 8, 16, 16, generator=g)
    origins = torch.tensor([0.0, 0.0, 2.7]).expand(1, 24, 3).contiguous()
    directions = torch.nn.functional.normalize(
        torch.randn(1, 24, 3, generator=g) * 0.15 + torch.tensor([0.0, 0.0, -1.0]), dim=-1)
    options = dict(ray_start=2.25, ray_end=3.3, box_warp=1.0, depth_resolution=12,
                   depth_resolution_importance=12, deterministic=True)
    return decoder, planes, origins, directions, options


def test_compiled_importance_render_equals_eager():
    decoder, planes, origins, directions, options = small_scene()
    renderer = ImportanceRenderer(ops="kernels")

    def render_loss(planes):
        rgb, depth, weights_sum = renderer(planes, decoder, origins, directions, options)
        return rgb, depth, weights_sum, (rgb.square().sum() + depth.sum() + weights_sum.sum())

    def run(fn):
        p = planes.detach().requires_grad_(True)
        decoder.zero_grad(set_to_none=True)
        *outs, loss = fn(p)
        loss.backward()
        return [o.detach() for o in outs] + [p.grad] + [q.grad.clone() for q in decoder.parameters()]

    torch._dynamo.reset()
    compiled = torch.compile(render_loss, fullgraph=True)  # raises on any graph break
    eager, got = run(render_loss), run(compiled)
    for e, c in zip(eager, got):
        assert c.shape == e.shape and rel_err(c, e) <= 1e-5, rel_err(c, e)


def test_kernels_and_reference_agree_under_fake_tensors():
    """The fake kernels give the real kernels' shapes (a render traced with FakeTensors)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    planes, coords = triplane_inputs(2, 1, 4, 5, 6, 9)
    real = nerfgan_kernels.triplane_sample(planes, coords, 1.0, "none")
    with FakeTensorMode() as mode:
        fake = nerfgan_kernels.triplane_sample(mode.from_tensor(planes), mode.from_tensor(coords),
                                               1.0, "none")
    assert fake.shape == real.shape == _reference.triplane_sample(planes, coords).shape


# ---- CPU instruction sets: the baseline build really is baseline

def _functions(disassembly: str):
    """(demangled name, body) of every function in ``objdump -d -C`` output."""
    name, body = None, []
    for line in disassembly.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            if name is not None:
                yield name, "\n".join(body)
            name, body = m.group(1), []
        elif name is not None:
            body.append(line)
    if name is not None:
        yield name, "\n".join(body)


def test_only_the_simd_builds_use_wide_registers():
    """No function of ours outside the avx2 / avx512 kernel namespaces touches a ymm / zmm
    register (so the baseline path runs on any x86-64 CPU, and no inline function was merged
    from a wide build), and the wide builds do use them."""
    objdump = shutil.which("objdump")
    if objdump is None or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("needs objdump (binutils) and an x86-64 build")
    text = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", _ext._C.__file__],
                          capture_output=True, text=True, check=True).stdout
    wide_outside, seen = [], {"avx2": False, "avx512": False}
    for name, body in _functions(text):
        if "nerfgan_kernels" not in name:
            continue
        if "::avx512::" in name:
            seen["avx512"] |= "%zmm" in body
        elif "::avx2::" in name:
            seen["avx2"] |= "%ymm" in body
        elif re.search(r"%[yz]mm", body):
            wide_outside.append(name)
    assert not wide_outside, wide_outside[:5]
    assert seen == {"avx2": True, "avx512": True}
