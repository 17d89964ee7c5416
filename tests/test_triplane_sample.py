"""triplane_sample: CPU kernel vs the PyTorch reference vs EG3D's recorded output."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file

import nerfgan_kernels
from nerfgan_kernels import _ext
from nerfgan_kernels.ops import _reference
from nerfgan_kernels.ops import triplane as triplane_mod
from helpers import fixture_path, rel_err, requires_cuda

# float32 kernels and torch's grid_sample round the same products in a different order; the
# relative error stays ~1e-6, so 1e-5 (the bound) leaves a 10x margin.
TOL = 1e-5

# (Np, Nc, C, H, W, M): channel counts not multiples of 4/8/32, H != W, broadcasting both ways.
SHAPES = [
    (1, 1, 32, 16, 16, 500),
    (2, 2, 7, 9, 13, 300),
    (1, 4, 5, 8, 6, 200),
    (3, 1, 33, 5, 11, 100),
    (2, 2, 1, 1, 1, 50),
    (1, 3, 3, 2, 17, 64),
]


def random_inputs(Np, Nc, C, H, W, M, dtype=torch.float32, box_warp=1.0, spread=1.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    planes = torch.randn(Np, 3, C, H, W, generator=g, dtype=dtype)
    # spread > 1 puts some points outside the box (zero padding and the border taps).
    coords = (torch.rand(Nc, M, 3, generator=g, dtype=dtype) * 2 - 1) * spread * box_warp / 2
    return planes, coords


def grads(fn, planes, coords, upstream):
    planes = planes.detach().requires_grad_(True)
    coords = coords.detach().requires_grad_(True)
    out = fn(planes, coords)
    gp, gc = torch.autograd.grad(out, (planes, coords), upstream)
    return out, gp, gc


def test_extension_is_built():
    # Every other test in this file exercises the compiled kernel only if this holds.
    assert nerfgan_kernels.extension_available(), _ext._IMPORT_ERROR


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduce", ["none", "mean", "sum"])
@pytest.mark.parametrize("box_warp", [1.0, 1.6])
def test_cpu_kernel_matches_reference(shape, reduce, box_warp, cpu_path):
    planes, coords = random_inputs(*shape, box_warp=box_warp)
    fn = lambda p, c: nerfgan_kernels.triplane_sample(p, c, box_warp, reduce)  # noqa: E731
    ref_fn = lambda p, c: _reference.triplane_sample(p, c, box_warp, reduce)  # noqa: E731
    expected = ref_fn(planes, coords)
    upstream = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1))
    out, gp, gc = grads(fn, planes, coords, upstream)
    ref, rgp, rgc = grads(ref_fn, planes, coords, upstream)
    assert out.shape == ref.shape
    assert rel_err(out, ref) <= TOL
    assert rel_err(gp, rgp) <= TOL
    # The coordinate gradient is a difference of taps times the texel scale: a few ulps more.
    assert rel_err(gc, rgc) <= 1e-4


def test_matches_eg3d_fixture():
    fx = load_file(fixture_path("fixture_sample_planes.safetensors"))
    for box_warp, key in [(1.0, "features"), (1.6, "features_box_warp_1p6")]:
        expected = fx[key]
        ref = _reference.triplane_sample(fx["planes"], fx["coordinates"], box_warp)
        out = nerfgan_kernels.triplane_sample(fx["planes"], fx["coordinates"], box_warp)
        assert rel_err(ref, expected) <= TOL
        assert rel_err(out, expected) <= TOL


def test_fixture_plane_axes_are_the_documented_projection():
    # EG3D projects with p @ inverse(plane_axes[k]); our fixed (x,y), (x,z), (z,x) must agree.
    fx = load_file(fixture_path("fixture_sample_planes.safetensors"))
    p = fx["coordinates"][0]
    for k in range(3):
        eg3d_uv = ((2.0 * p) @ torch.linalg.inv(fx["plane_axes"][k]))[:, :2]
        ours = _reference.project_onto_planes(p[None])[0, k]
        torch.testing.assert_close(ours, eg3d_uv)


@pytest.mark.parametrize("reduce", ["none", "mean"])
@pytest.mark.parametrize("shape", [(1, 2, 3, 4, 5, 7), (2, 1, 2, 3, 3, 6), (2, 2, 3, 5, 4, 5)])
def test_gradcheck_float64(shape, reduce, cpu_path):
    planes, coords = random_inputs(*shape, dtype=torch.float64, spread=1.2, seed=3)
    planes.requires_grad_(True)
    coords.requires_grad_(True)
    fn = lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.3, reduce)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (planes, coords), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_non_contiguous_and_channels_last_inputs(cpu_path):
    planes, coords = random_inputs(2, 2, 6, 10, 12, 150)
    expected = _reference.triplane_sample(planes, coords)
    # channels-last storage viewed as (N, 3, C, H, W)
    planes_cl = planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    assert not planes_cl.is_contiguous()
    # strided views: every other channel / point of bigger tensors
    big_planes = torch.randn(2, 3, 12, 10, 12)
    big_planes[:, :, ::2] = planes
    coords_t = coords.transpose(1, 2).contiguous().transpose(1, 2)
    big_coords = torch.randn(2, 300, 3)
    big_coords[:, ::2] = coords
    for p, c in [(planes_cl, coords), (big_planes[:, :, ::2], big_coords[:, ::2]),
                 (planes, coords_t)]:
        assert not (p.is_contiguous() and c.is_contiguous())
        assert rel_err(nerfgan_kernels.triplane_sample(p, c), expected) <= TOL
    # gradients through a non-contiguous view
    upstream = torch.randn(expected.shape)
    _, gp, gc = grads(nerfgan_kernels.triplane_sample, planes_cl, big_coords[:, ::2], upstream)
    _, rgp, rgc = grads(_reference.triplane_sample, planes, coords, upstream)
    assert rel_err(gp, rgp) <= TOL and rel_err(gc, rgc) <= 1e-4


def test_broadcast_equals_explicit_expansion(cpu_path):
    planes, coords = random_inputs(1, 4, 5, 6, 7, 40)
    out = nerfgan_kernels.triplane_sample(planes, coords)
    expanded = nerfgan_kernels.triplane_sample(planes.expand(4, -1, -1, -1, -1), coords)
    torch.testing.assert_close(out, expanded, rtol=0, atol=0)
    planes4, coords1 = random_inputs(4, 1, 5, 6, 7, 40)
    out = nerfgan_kernels.triplane_sample(planes4, coords1, reduce="sum")
    expanded = nerfgan_kernels.triplane_sample(planes4, coords1.expand(4, -1, -1), reduce="sum")
    torch.testing.assert_close(out, expanded, rtol=0, atol=0)
    # the broadcast input's gradient is the sum over the batch
    c = coords1.clone().requires_grad_(True)
    nerfgan_kernels.triplane_sample(planes4, c, reduce="sum").square().sum().backward()
    ce = coords1.expand(4, -1, -1).clone().requires_grad_(True)
    nerfgan_kernels.triplane_sample(planes4, ce, reduce="sum").square().sum().backward()
    torch.testing.assert_close(c.grad, ce.grad.sum(0, keepdim=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduce", ["none", "mean"])
def test_empty_points(reduce):
    planes, _ = random_inputs(2, 2, 5, 4, 4, 1)
    coords = torch.empty(2, 0, 3, requires_grad=True)
    planes.requires_grad_(True)
    out = nerfgan_kernels.triplane_sample(planes, coords, reduce=reduce)
    assert out.shape == ((2, 3, 0, 5) if reduce == "none" else (2, 0, 5))
    out.sum().backward()
    assert torch.equal(planes.grad, torch.zeros_like(planes))
    assert coords.grad.shape == (2, 0, 3)


def test_far_outside_points_read_zero_with_zero_gradient(cpu_path):
    planes, coords = random_inputs(1, 1, 4, 8, 8, 6)
    far = torch.tensor([[[1e6, 0.0, 0.0], [0.0, -1e30, 0.1], [3e38, 3e38, -3e38],
                         [float("inf"), 0.0, 0.0], [0.0, 0.0, -float("inf")], [0.5, 0.5, 0.5]]])
    far.requires_grad_(True)
    planes.requires_grad_(True)
    out = nerfgan_kernels.triplane_sample(planes, far)
    # every plane of every point except the last sees at least one out-of-range coordinate ...
    assert torch.isfinite(out).all()
    # grid_sample agrees while coordinates stay finite after scaling; beyond that (3e38 * 2 = inf)
    # it returns NaN where the kernel reads the zero padding.
    ref = _reference.triplane_sample(planes.detach(), far.detach()[:, :2])
    assert rel_err(out[:, :, :2], ref) <= TOL
    assert torch.equal(out[:, 0, 0], torch.zeros_like(out[:, 0, 0]))  # x = 1e6 on plane (x, y)
    assert torch.equal(out[:, 2, 2], torch.zeros_like(out[:, 2, 2]))  # all huge
    # ... the corner point (0.5, 0.5, 0.5) still reads its corner texel with weight 1/4
    corner = planes.detach()[0, :, :, -1, -1] / 4
    torch.testing.assert_close(out[0, :, 5], corner, rtol=1e-6, atol=1e-6)
    out.sum().backward()
    assert torch.isfinite(far.grad).all() and torch.isfinite(planes.grad).all()
    assert torch.equal(far.grad[0, 2], torch.zeros(3))


@pytest.mark.parametrize(
    "planes_shape, coords_shape, match",
    [
        ((3, 4, 8, 8), (1, 10, 3), "planes must have shape"),
        ((1, 2, 4, 8, 8), (1, 10, 3), "planes must have shape"),
        ((1, 3, 4, 8, 8), (10, 3), "coords must have shape"),
        ((1, 3, 4, 8, 8), (1, 10, 2), "coords must have shape"),
        ((2, 3, 4, 8, 8), (3, 10, 3), "batch sizes of planes"),
        ((1, 3, 4, 0, 8), (1, 10, 3), "planes must have shape"),
    ],
)
def test_bad_shapes_raise_naming_the_argument(planes_shape, coords_shape, match):
    with pytest.raises(ValueError, match=match):
        nerfgan_kernels.triplane_sample(torch.randn(planes_shape), torch.randn(coords_shape))


def test_bad_dtypes_devices_and_options_raise():
    planes, coords = random_inputs(1, 1, 4, 8, 8, 10)
    with pytest.raises(ValueError, match="planes must have dtype"):
        nerfgan_kernels.triplane_sample(planes.half(), coords.half())
    with pytest.raises(ValueError, match="planes must have dtype"):
        nerfgan_kernels.triplane_sample(planes.int(), coords.int())
    with pytest.raises(ValueError, match="coords must have dtype torch.float32 for torch.float32"):
        nerfgan_kernels.triplane_sample(planes, coords.double())
    with pytest.raises(ValueError, match="same device"):
        nerfgan_kernels.triplane_sample(planes, coords.to("meta"))
    with pytest.raises(ValueError, match="reduce"):
        nerfgan_kernels.triplane_sample(planes, coords, reduce="max")
    with pytest.raises(ValueError, match="box_warp"):
        nerfgan_kernels.triplane_sample(planes, coords, box_warp=0.0)
    with pytest.raises(ValueError, match="coords must be a torch.Tensor"):
        nerfgan_kernels.triplane_sample(planes, [[0.0, 0.0, 0.0]])


def test_cpp_checks_name_the_argument():
    # C++ consumers call the kernels without the Python checks: TORCH_CHECK must catch the same.
    ext = torch.ops.nerfgan_kernels
    planes, coords = random_inputs(2, 2, 4, 8, 8, 10)
    with pytest.raises(RuntimeError, match="coords must have shape"):
        ext.triplane_sample(planes, coords[0], 1.0, "none")
    with pytest.raises(RuntimeError, match="batch sizes of planes"):
        ext.triplane_sample(planes, torch.randn(3, 10, 3), 1.0, "none")
    with pytest.raises(RuntimeError, match="planes must be float32, float64 or bfloat16"):
        ext.triplane_sample(planes.half(), coords.half(), 1.0, "none")
    with pytest.raises(RuntimeError, match="reduce must be one of"):
        ext.triplane_sample(planes, coords, 1.0, "max")
    with pytest.raises(RuntimeError, match="grad_out must have shape"):
        ext.triplane_sample_backward(torch.randn(2, 10, 4), planes, coords, 1.0, "none", True, True)


def test_fallback_to_reference_warns_once(monkeypatch):
    monkeypatch.setattr(_ext, "_C", None)
    monkeypatch.setattr(_ext, "_warned", set())
    planes, coords = random_inputs(1, 2, 3, 5, 5, 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = triplane_mod.triplane_sample(planes, coords)
        triplane_mod.triplane_sample(planes, coords)
    assert sum("falling back" in str(w.message) for w in caught) == 1
    torch.testing.assert_close(out, _reference.triplane_sample(planes, coords), rtol=0, atol=0)


# ---- CUDA (skipped without a GPU) --------------------------------------------------------------

@requires_cuda
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduce", ["none", "mean"])
def test_cuda_kernel_matches_reference_fp32(shape, reduce):
    assert nerfgan_kernels.cuda_available()
    planes, coords = random_inputs(*shape)
    ref_fn = lambda p, c: _reference.triplane_sample(p, c, 1.0, reduce)  # noqa: E731
    fn = lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, reduce)  # noqa: E731
    upstream = torch.randn(ref_fn(planes, coords).shape, generator=torch.Generator().manual_seed(2))
    ref, rgp, rgc = grads(ref_fn, planes, coords, upstream)
    out, gp, gc = grads(fn, planes.cuda(), coords.cuda(), upstream.cuda())
    assert rel_err(out.cpu(), ref) <= TOL
    assert rel_err(gp.cpu(), rgp) <= TOL
    assert rel_err(gc.cpu(), rgc) <= 1e-4


@requires_cuda
def test_cuda_gradcheck_float64_and_bad_device_mix():
    planes, coords = random_inputs(2, 1, 3, 4, 5, 6, dtype=torch.float64, seed=5)
    planes = planes.cuda().requires_grad_(True)
    coords = coords.cuda().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, "sum"),
                                    (planes, coords), eps=1e-6, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="same device"):
        nerfgan_kernels.triplane_sample(planes, coords.cpu())


# ---- CPU instruction-set paths and the banded backward

def test_cpu_paths_agree_and_a_bad_capability_raises(monkeypatch):
    planes, coords = random_inputs(1, 2, 33, 20, 24, 3000)
    upstream = torch.randn(2, 3000, 33)
    results = {}
    for path in _ext._C.cpu_capabilities():
        monkeypatch.setenv("NERFGAN_KERNELS_CPU_CAPABILITY", path)
        assert _ext._C.cpu_capability() == path
        results[path] = grads(lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, "mean"),
                              planes, coords, upstream)
    base = results["default"]
    for path, got in results.items():
        for g, b in zip(got, base):
            assert rel_err(g, b) <= 1e-5, path
    monkeypatch.setenv("NERFGAN_KERNELS_CPU_CAPABILITY", "sse9")
    with pytest.raises(RuntimeError, match="NERFGAN_KERNELS_CPU_CAPABILITY must be one of"):
        nerfgan_kernels.triplane_sample(planes, coords)


@pytest.mark.parametrize("threads", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("layout", ["spread", "clustered", "edges"])
def test_banded_backward_matches_reference_for_any_thread_count(threads, layout, cpu_path):
    """One plane set and >= 4096 points: the planes' gradient is split into row bands (uneven
    when the points cluster; points on the first and last rows and outside the planes)."""
    planes, coords = random_inputs(1, 2, 8, 16, 12, 5000, seed=threads)
    if layout == "clustered":  # most points on a few rows: bands of very different heights
        coords[..., 1] = coords[..., 1] * 0.05 + 0.2
        coords[..., 2] = coords[..., 2] * 0.1 - 0.3
        coords[..., 0] = coords[..., 0] * 0.05
    elif layout == "edges":  # texel rows -1 / 0 and H-1 / H of every plane, and far outside
        coords[:, ::3] = torch.sign(coords[:, ::3]) * (0.5 - 1e-3)
        coords[:, 1::7] = 40.0
    upstream = torch.randn(2, 3, 5000, 8)
    fn = lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, "none")  # noqa: E731
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out, gp, gc = grads(fn, planes, coords, upstream)
        again = grads(fn, planes, coords, upstream)
    finally:
        torch.set_num_threads(previous)
    ref, rgp, rgc = grads(lambda p, c: _reference.triplane_sample(p, c, 1.0, "none"), planes,
                          coords, upstream)
    assert all(torch.equal(a, b) for a, b in zip((out, gp, gc), again))  # deterministic
    assert rel_err(out, ref) <= TOL and rel_err(gp, rgp) <= TOL and rel_err(gc, rgc) <= 1e-4
