"""The mixed-dtype contract: half-precision features, float32 geometry, float32 accumulation.

Every comparison is against a float32 reference computed from the *float32* inputs, so the
error measured is the whole cost of the half-precision features, nothing hidden by rounding the
reference's inputs the same way. Geometry (coords, depths) is never rounded, so these results
do not depend on where rounded points would fall on texel edges.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import nerfgan_kernels
from nerfgan_kernels import _ext
from nerfgan_kernels.ops import _reference
from helpers import rel_err
from test_composite import random_rays, upstream_for
from test_importance import merge_inputs
from test_triplane_sample import random_inputs as triplane_inputs

pytestmark = pytest.mark.skipif(not _ext.extension_available(), reason="extension not built")
EXACT = dict(t_min=0.0, alpha_min=0.0)


def cases():
    """(device, half dtype, tolerance): bfloat16 on the CPU, float16 / bfloat16 on CUDA."""
    out = [("cpu", torch.bfloat16, 2e-2)]
    if torch.cuda.is_available() and _ext.cuda_available():
        out += [("cuda", torch.float16, 3e-3), ("cuda", torch.bfloat16, 2e-2)]
    return out


def grads_of(fn, inputs, upstream):
    inputs = [x.detach().requires_grad_(True) for x in inputs]
    outs = fn(*inputs)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    grads = torch.autograd.grad(outs, inputs, upstream)
    return [o.detach() for o in outs], list(grads)


@pytest.mark.parametrize("device, dtype, tol", cases())
@pytest.mark.parametrize("reduce", ["none", "mean"])
def test_triplane_half_planes_against_float32(device, dtype, tol, reduce):
    planes, coords = triplane_inputs(2, 1, 32, 24, 20, 3000)
    upstream = torch.randn(_reference.triplane_sample(planes, coords, 1.0, reduce).shape)
    ref_out, ref_grads = grads_of(lambda p, c: _reference.triplane_sample(p, c, 1.0, reduce),
                                  [planes, coords], [upstream])
    out, grads = grads_of(lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, reduce),
                          [planes.to(device, dtype), coords.to(device)],
                          [upstream.to(device, dtype)])
    assert out[0].dtype == dtype and grads[0].dtype == dtype
    assert grads[1].dtype == torch.float32  # the coords' gradient stays in the coords' dtype
    for got, want in zip([out[0], *grads], [ref_out[0], *ref_grads]):
        assert rel_err(got.float().cpu(), want) <= tol


@pytest.mark.parametrize("device, dtype, tol", cases())
@pytest.mark.parametrize("masking", [EXACT, {}])
def test_composite_half_features_against_float32(device, dtype, tol, masking):
    colors, densities, depths = random_rays(2, 64, 48, 32)
    upstream = list(upstream_for(2, 64, 48, 32))
    ref_out, ref_grads = grads_of(
        lambda c, s: _reference.composite(c, s, depths, **(masking or dict(t_min=1e-4, alpha_min=1e-6))),
        [colors, densities], upstream)
    out, grads = grads_of(
        lambda c, s: nerfgan_kernels.composite(c, s, depths.to(device), **masking),
        [colors.to(device, dtype), densities.to(device, dtype)],
        [upstream[0].to(device, dtype), upstream[1].to(device), upstream[2].to(device)])
    rgb, depth, weights = out
    assert rgb.dtype == dtype and depth.dtype == weights.dtype == torch.float32
    assert grads[0].dtype == grads[1].dtype == dtype
    for got, want in zip([*out, *grads], [*ref_out, *ref_grads]):
        assert rel_err(got.float().cpu(), want) <= tol


@pytest.mark.parametrize("device, dtype, tol", cases())
def test_merge_half_values_exact(device, dtype, tol):
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 5, 12, 9)
    va = [v.to(device, dtype) for v in values_a]
    vb = [v.to(device, dtype) for v in values_b]
    depths, values = nerfgan_kernels.merge_samples(depths_a.to(device), va, depths_b.to(device), vb)
    ref_depths, ref_values = _reference.merge_samples(depths_a, [v.cpu() for v in va], depths_b,
                                                      [v.cpu() for v in vb])
    assert torch.equal(depths.cpu(), ref_depths)
    assert all(v.dtype == dtype and torch.equal(v.cpu(), r) for v, r in zip(values, ref_values))


def test_geometry_is_never_half():
    planes, coords = triplane_inputs(1, 1, 4, 5, 5, 7)
    with pytest.raises(ValueError, match="coords must have dtype torch.float32 for torch.bfloat16"):
        nerfgan_kernels.triplane_sample(planes.bfloat16(), coords.bfloat16())
    with pytest.raises(RuntimeError, match="coords must be Float for BFloat16 planes"):
        torch.ops.nerfgan_kernels.triplane_sample(planes.bfloat16(), coords.bfloat16(), 1.0, "none")
    colors, densities, depths = random_rays(1, 3, 6, 4)
    with pytest.raises(ValueError, match="depths must have dtype torch.float32"):
        nerfgan_kernels.composite(colors.bfloat16(), densities.bfloat16(), depths.bfloat16())
    with pytest.raises(ValueError, match="depths must have dtype torch.float64"):
        nerfgan_kernels.composite(colors.double(), densities.double(), depths)


def test_cpu_bfloat16_reference_fallback_follows_the_contract():
    planes, coords = triplane_inputs(1, 1, 4, 5, 5, 7)
    out = _reference.triplane_sample(planes.bfloat16(), coords)
    assert out.dtype == torch.bfloat16
    colors, densities, depths = random_rays(1, 3, 6, 4)
    rgb, depth, weights = _reference.composite(colors.bfloat16(), densities.bfloat16(), depths)
    assert rgb.dtype == torch.bfloat16 and depth.dtype == weights.dtype == torch.float32


# ---- autocast

def test_autocast_casts_features_and_keeps_geometry():
    planes, coords = triplane_inputs(1, 1, 8, 6, 6, 50)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = nerfgan_kernels.triplane_sample(planes, coords, 1.0, "mean")
        colors, densities, depths = random_rays(1, 4, 8, 3)
        rgb, depth, weights = nerfgan_kernels.composite(colors, densities, depths)
    assert out.dtype == torch.bfloat16
    assert rgb.dtype == torch.bfloat16 and depth.dtype == weights.dtype == torch.float32
    assert rel_err(out.float(), _reference.triplane_sample(planes, coords, 1.0, "mean")) <= 2e-2
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        assert nerfgan_kernels.triplane_sample(planes, coords).dtype == torch.float32


class DtypeLog(TorchDispatchMode):
    """Records the dtype of the first tensor argument of every op that runs (after autocast)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if first is not None:
            self.calls.append((str(func.overloadpacket), first.dtype))
        return func(*args, **(kwargs or {}))

    def dtypes(self, name: str) -> set:
        return {dtype for op, dtype in self.calls if op == name}


@pytest.fixture(scope="module")
def default_generator():
    from nerfgan_kernels.models import load_generator
    return load_generator("default")


def render(G, ws, c):
    return G.synthesis(ws, c, deterministic=True)


@pytest.mark.parametrize("ops", ["fused", "kernels"])
def test_autocast_render_of_the_default_generator(default_generator, ops):
    """Under CPU bf16 autocast the backbone and super-resolution convolutions run in bf16; with
    ops="kernels" the per-op kernels receive bf16 planes and colours (the rays and depths stay
    float32); the fused renderer (the default) computes in the planes' float32 (its activations
    never reach memory). Image and depth stay within 2e-2 (relative L2) of float32.
    (Measured, kernels: 1.3e-2 and 4e-3.)"""
    from inversion.data.train_default import held_out_cameras, item_z

    from nerfgan_kernels.render import ImportanceRenderer

    G = default_generator
    c = held_out_cameras()[:2]
    renderer, G.renderer = G.renderer, ImportanceRenderer(ops=ops)
    try:
        with torch.no_grad():
            ws = G.mapping(item_z(0, G.z_dim)[None].expand(2, -1), torch.zeros(2, 25))
            full = render(G, ws, c)
            with DtypeLog() as log:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    half = render(G, ws, c)
    finally:
        G.renderer = renderer
    convs = log.dtypes("aten.convolution")
    assert convs and convs == {torch.bfloat16}  # backbone and super-resolution
    if ops == "kernels":
        assert log.dtypes("nerfgan_kernels.triplane_sample") == {torch.bfloat16}  # the planes
        assert log.dtypes("nerfgan_kernels.composite") == {torch.bfloat16}  # the colours
    else:
        assert log.dtypes("nerfgan_kernels.render_triplane") == {torch.float32}
        assert not log.dtypes("nerfgan_kernels.triplane_sample")  # no per-op fallback
    for key in ("image", "image_depth"):  # relative L2 error of the whole picture
        assert torch.isfinite(half[key]).all()
        err = ((half[key].float() - full[key]).norm() / full[key].norm()).item()
        assert err <= 2e-2, (key, err)


def test_autocast_inversion_step_runs(default_generator):
    """One PTI-style step under autocast: forward, backward to the latent and the generator."""
    import copy

    from inversion.data.train_default import held_out_cameras

    G = copy.deepcopy(default_generator).train()
    c = held_out_cameras()[:1]
    ws = G.mapping(torch.randn(1, G.z_dim), torch.zeros(1, 25)).detach().requires_grad_(True)
    target = torch.rand(1, 3, G.img_resolution, G.img_resolution) * 2 - 1
    optimizer = torch.optim.Adam([ws, *G.parameters()], lr=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = render(G, ws, c)
        loss = (out["image"].float() - target).square().mean()
    loss.backward()
    optimizer.step()
    grads = [ws.grad] + [p.grad for p in G.decoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
