"""sample_pdf and merge_samples: CPU kernels vs the PyTorch references vs EG3D's recorded outputs."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file

import nerfgan_kernels
from nerfgan_kernels import _ext
from nerfgan_kernels.ops import _reference
from nerfgan_kernels.ops import importance as importance_mod
from helpers import fixture_path, rel_err, requires_cuda

# Fine depths: the kernel sums the pdf weights in double where torch's float32 sum uses its own
# vectorized order, so CDF entries differ by an ulp and depths by ~3e-7 relative (measured on the
# fixture); 1e-5 (the bound) leaves a 30x margin. The inverse CDF is continuous in the CDF
# on these inputs (no pdf weight comes near the 1e-5 denominator threshold), so an ulp cannot
# make a sample jump to another bin.
TOL = 1e-5

# (N, R, D, n): D = 4 (the smallest: one pdf weight), one ray, n = 1, n != D, long rays.
PDF_SHAPES = [
    (1, 1, 4, 5),
    (2, 7, 4, 1),
    (1, 1, 48, 48),
    (2, 33, 48, 48),
    (3, 5, 13, 64),
    (1, 40, 200, 17),
    (2, 3, 300, 301),
]


def coarse_inputs(N, R, D, dtype=torch.float32, seed=0):
    """Sorted coarse depths with uneven spacing and peaky random weights in (0, 1)."""
    g = torch.Generator().manual_seed(seed)
    start = 2.0 + torch.rand(N, R, 1, 1, generator=g, dtype=dtype)
    steps = 0.005 + 0.05 * torch.rand(N, R, D, 1, generator=g, dtype=dtype)
    depths = start + torch.cumsum(steps, dim=2)
    weights = torch.rand(N, R, D - 1, 1, generator=g, dtype=dtype) ** 4
    return depths, weights


def random_u(N, R, n, dtype=torch.float32, seed=1):
    return torch.rand(N * R, n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_extension_is_built():
    # Every kernel test in this file exercises the compiled kernel only if this holds.
    assert nerfgan_kernels.extension_available(), _ext._IMPORT_ERROR


def test_ops_run_the_extension_not_the_reference(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the reference ran instead of the kernel")

    monkeypatch.setattr(_reference, "sample_pdf", fail)
    monkeypatch.setattr(_reference, "merge_samples", fail)
    depths, weights = coarse_inputs(1, 3, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning either
        fine = nerfgan_kernels.sample_pdf(depths, weights, 6, deterministic=True)
        merged, _ = nerfgan_kernels.merge_samples(depths, [depths], fine, [fine])
    assert merged.shape == (1, 3, 14, 1)


# ---- sample_pdf ----------------------------------------------------------------------------------

def test_reference_matches_eg3d_fixture():
    fx = load_file(fixture_path("fixture_importance.safetensors"))
    det = _reference.sample_pdf(fx["depths_coarse"], fx["weights"], 48, deterministic=True)
    with_u = _reference.sample_pdf(fx["depths_coarse"], fx["weights"], 48, u=fx["u"])
    # Written with EG3D's own torch ops: bit-for-bit on the CPU, so well within TOL.
    assert rel_err(det, fx["depths_fine_det"]) <= TOL
    assert rel_err(with_u, fx["depths_fine_u"]) <= TOL


def test_kernel_matches_eg3d_fixture_with_both_u_layouts():
    fx = load_file(fixture_path("fixture_importance.safetensors"))
    z, w, u = fx["depths_coarse"], fx["weights"], fx["u"]
    det = nerfgan_kernels.sample_pdf(z, w, 48, deterministic=True)
    assert rel_err(det, fx["depths_fine_det"]) <= TOL
    for u_layout in (u, u.reshape(2, 256, 48)):
        out = nerfgan_kernels.sample_pdf(z, w, 48, u=u_layout)
        assert out.shape == (2, 256, 48, 1)
        assert rel_err(out, fx["depths_fine_u"]) <= TOL


@pytest.mark.parametrize("shape", PDF_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_kernel_matches_reference(shape, dtype):
    N, R, D, n = shape
    depths, weights = coarse_inputs(N, R, D, dtype)
    u = random_u(N, R, n, dtype)
    for kwargs in ({"u": u}, {"deterministic": True}):
        out = nerfgan_kernels.sample_pdf(depths, weights, n, **kwargs)
        ref = _reference.sample_pdf(depths, weights, n, **kwargs)
        assert out.shape == (N, R, n, 1) and out.dtype == dtype
        assert rel_err(out, ref) <= (TOL if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("case", ["empty_rays", "opaque_first_sample", "opaque_last_sample"])
def test_degenerate_weights(case):
    N, R, D, n = 2, 9, 48, 48
    depths, weights = coarse_inputs(N, R, D)
    weights = torch.zeros_like(weights)
    if case == "opaque_first_sample":
        weights[:, :, 0] = 1.0  # the whole ray's weight on the first interval
    elif case == "opaque_last_sample":
        weights[:, :, -1] = 1.0
    out = nerfgan_kernels.sample_pdf(depths, weights, n, deterministic=True)
    ref = _reference.sample_pdf(depths, weights, n, deterministic=True)
    assert rel_err(out, ref) <= TOL
    bins = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    # every sample lies within the bins EG3D can use: 0 .. D-3 (the last midpoint never)
    assert (out >= bins[:, :, :1] - 1e-6).all() and (out <= bins[:, :, D - 3:D - 2] + 1e-6).all()
    if case == "opaque_first_sample":
        # half of the smoothed mass sits in the first pdf bin (~54%): so do the samples
        assert ((out <= bins[:, :, 1:2]).sum(2) >= 24).all()


def test_u_at_and_beyond_the_ends_of_the_cdf():
    # u = 0 and u = 1 (linspace's ends), and u outside [0, 1] from a caller: clamped to the first
    # and last usable bin exactly as EG3D's searchsorted + clamp; NaN stays NaN.
    depths, weights = coarse_inputs(2, 5, 16)
    u = torch.tensor([0.0, 1.0, -0.25, 1.25, 0.5, float("nan")]).repeat(10, 1)
    out = nerfgan_kernels.sample_pdf(depths, weights, 6, u=u)
    ref = _reference.sample_pdf(depths, weights, 6, u=u)
    assert rel_err(out[..., :5, :], ref[..., :5, :]) <= TOL
    assert out[..., 5, :].isnan().all() and ref[..., 5, :].isnan().all()
    bins = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    assert torch.equal(out[:, :, 0], bins[:, :, 0]) and torch.equal(out[:, :, 2], bins[:, :, 0])
    torch.testing.assert_close(out[:, :, 3], bins[:, :, 13], rtol=1e-6, atol=0)


@pytest.mark.parametrize("N, R, n", [(2, 0, 8), (0, 3, 8), (2, 3, 0)])
def test_empty_inputs(N, R, n):
    depths, weights = coarse_inputs(max(N, 1), max(R, 1), 6)
    depths, weights = depths[:N, :R], weights[:N, :R]
    for kwargs in ({"deterministic": True}, {}, {"u": torch.rand(N * R, n)}):
        out = nerfgan_kernels.sample_pdf(depths, weights, n, **kwargs)
        assert out.shape == (N, R, n, 1)
        assert out.shape == _reference.sample_pdf(depths, weights, n, **kwargs).shape


def test_non_contiguous_inputs():
    N, R, D, n = 2, 11, 20, 16
    depths, weights = coarse_inputs(N, R, D)
    u = random_u(N, R, n).reshape(N, R, n)
    expected = _reference.sample_pdf(depths, weights, n, u=u)
    big_depths = torch.randn(N, 2 * R, D, 2)
    big_depths[:, ::2, :, 1:] = depths
    weights_t = weights.transpose(0, 1).contiguous().transpose(0, 1)
    u_t = u.transpose(1, 2).contiguous().transpose(1, 2)
    d, w = big_depths[:, ::2, :, 1:], weights_t
    assert not (d.is_contiguous() or w.is_contiguous() or u_t.is_contiguous())
    assert rel_err(nerfgan_kernels.sample_pdf(d, w, n, u=u_t), expected) <= TOL


def test_generator_reproducibility():
    depths, weights = coarse_inputs(2, 17, 24)

    def draw(seed, fn=nerfgan_kernels.sample_pdf):
        return fn(depths, weights, 32, generator=torch.Generator().manual_seed(seed))

    first, again, other = draw(7), draw(7), draw(8)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # the kernel draws u exactly as the reference does: (N*R, n) from torch.rand
    assert rel_err(first, draw(7, _reference.sample_pdf)) <= TOL
    u = torch.rand(2 * 17, 32, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, nerfgan_kernels.sample_pdf(depths, weights, 32, u=u))


def test_output_is_detached_and_inside_the_bins():
    depths, weights = coarse_inputs(2, 13, 48)
    depths.requires_grad_(True)
    weights.requires_grad_(True)
    out = nerfgan_kernels.sample_pdf(depths, weights, 64, u=random_u(2, 13, 64))
    assert not out.requires_grad and out.grad_fn is None
    bins = (depths[:, :, :-1] + depths[:, :, 1:]).detach() / 2
    assert (out >= bins[:, :, :1]).all() and (out <= bins[:, :, 45:46]).all()


# ---- merge_samples -------------------------------------------------------------------------------

# (N, R, Sa, Sb): empty lists on either side, R = 0, N = 0, Sb > Sa.
MERGE_SHAPES = [
    (2, 5, 48, 48),
    (1, 1, 1, 1),
    (3, 4, 0, 5),
    (3, 4, 5, 0),
    (2, 3, 7, 64),
    (1, 0, 4, 4),
    (0, 2, 3, 3),
]
CHANNELS = (32, 1, 3)


def merge_inputs(N, R, Sa, Sb, dtype=torch.float32, seed=0, ties=True):
    """Sorted a, unsorted b (with exact ties against a and within b when asked), random values."""
    g = torch.Generator().manual_seed(seed)
    depths_a = torch.sort(torch.rand(N, R, Sa, 1, generator=g, dtype=dtype), dim=2).values
    depths_b = torch.rand(N, R, Sb, 1, generator=g, dtype=dtype)
    if ties and Sa > 1 and Sb > 3:
        depths_b[:, :, 0] = depths_a[:, :, 1]
        depths_b[:, :, 2] = depths_a[:, :, 1]
        depths_b[:, :, 3] = depths_b[:, :, 1]
    values_a = [torch.randn(N, R, Sa, c, generator=g, dtype=dtype) for c in CHANNELS]
    values_b = [torch.randn(N, R, Sb, c, generator=g, dtype=dtype) for c in CHANNELS]
    return depths_a, values_a, depths_b, values_b


def merge_with_grads(fn, depths_a, values_a, depths_b, values_b, upstream):
    va = [v.detach().requires_grad_(True) for v in values_a]
    vb = [v.detach().requires_grad_(True) for v in values_b]
    depths, values = fn(depths_a, va, depths_b, vb)
    grads = torch.autograd.grad(values, va + vb, upstream, allow_unused=True) if va else []
    return depths, values, grads


def test_merge_matches_eg3d_unify_samples():
    fx = load_file(fixture_path("fixture_importance.safetensors"))
    args = (fx["depths_coarse"], [fx["colors_coarse"], fx["densities_coarse"]],
            fx["depths_fine_det"], [fx["colors_fine"], fx["densities_fine"]])
    for fn in (_reference.merge_samples, nerfgan_kernels.merge_samples):
        depths, (colors, densities) = fn(*args)
        # a pure reordering: exact (EG3D's unstable sort meets no ties on this data)
        assert torch.equal(depths, fx["all_depths"])
        assert torch.equal(colors, fx["all_colors"])
        assert torch.equal(densities, fx["all_densities"])


@pytest.mark.parametrize("shape", MERGE_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_merge_cpu_kernel_matches_reference_with_gradients(shape, dtype):
    inputs = merge_inputs(*shape, dtype=dtype)
    N, R, Sa, Sb = shape
    g = torch.Generator().manual_seed(3)
    upstream = [torch.randn(N, R, Sa + Sb, c, generator=g, dtype=dtype) for c in CHANNELS]
    depths, values, grads = merge_with_grads(nerfgan_kernels.merge_samples, *inputs, upstream)
    rdepths, rvalues, rgrads = merge_with_grads(_reference.merge_samples, *inputs, upstream)
    # A permutation with the same tie rule (stable: a first): every number is copied, so exact.
    assert depths.shape == (N, R, Sa + Sb, 1) and not depths.requires_grad
    assert torch.equal(depths, rdepths)
    for out, ref in zip(values, rvalues):
        assert out.dtype == dtype and torch.equal(out, ref)
    for grad, rgrad in zip(grads, rgrads):
        assert torch.equal(grad, rgrad)


def test_merge_gradcheck_float64():
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 3, 5, 6, dtype=torch.float64)
    va = [v.requires_grad_(True) for v in values_a[:2]]
    vb = [v.requires_grad_(True) for v in values_b[:2]]

    def fn(a0, a1, b0, b1):
        return tuple(nerfgan_kernels.merge_samples(depths_a, [a0, a1], depths_b, [b0, b1])[1])

    assert torch.autograd.gradcheck(fn, (*va, *vb), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_merge_gradient_to_one_side_only():
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 4, 6, 5)
    va = values_a[0].clone().requires_grad_(True)
    _, (out,) = nerfgan_kernels.merge_samples(depths_a, [va], depths_b, [values_b[0]])
    upstream = torch.randn(out.shape)
    out.backward(upstream)
    rva = values_a[0].clone().requires_grad_(True)
    _, (ref,) = _reference.merge_samples(depths_a, [rva], depths_b, [values_b[0]])
    ref.backward(upstream)
    assert torch.equal(va.grad, rva.grad)


def test_merge_non_contiguous_and_empty_values_list():
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 6, 9, 7)
    expected_depths, expected = _reference.merge_samples(depths_a, values_a, depths_b, values_b)
    views_a = [v.transpose(0, 1).contiguous().transpose(0, 1) for v in values_a]
    big_b = torch.randn(2, 6, 14, 1)
    big_b[:, :, ::2] = depths_b
    depths, values = nerfgan_kernels.merge_samples(depths_a, tuple(views_a), big_b[:, :, ::2],
                                                   tuple(values_b))
    assert not views_a[0].is_contiguous() and not big_b[:, :, ::2].is_contiguous()
    assert torch.equal(depths, expected_depths)
    assert all(torch.equal(o, r) for o, r in zip(values, expected))
    depths, values = nerfgan_kernels.merge_samples(depths_a, [], depths_b, [])
    assert torch.equal(depths, expected_depths) and values == []


def test_merge_nan_depths_sort_last_like_torch_sort():
    depths_a, values_a, depths_b, values_b = merge_inputs(1, 4, 6, 8)
    depths_a[0, 1, -2:] = float("nan")  # still "sorted": NaN after every number
    depths_b[0, 2, 3] = float("nan")
    depths_b[0, 1, 0] = float("nan")
    depths, values = nerfgan_kernels.merge_samples(depths_a, values_a, depths_b, values_b)
    rdepths, rvalues = _reference.merge_samples(depths_a, values_a, depths_b, values_b)
    torch.testing.assert_close(depths, rdepths, rtol=0, atol=0, equal_nan=True)
    assert all(torch.equal(o, r) for o, r in zip(values, rvalues))


def test_merge_with_unsorted_a_is_still_a_permutation():
    # Contract violation (depths_a unsorted): the output is not sorted, but every input sample
    # appears exactly once; nothing is read or written out of bounds.
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 5, 8, 8)
    depths_a = depths_a.flip(2)
    depths, (colors, *_) = nerfgan_kernels.merge_samples(depths_a, values_a, depths_b, values_b)
    all_depths = torch.cat([depths_a, depths_b], 2)
    assert torch.equal(depths.sort(2).values, all_depths.sort(2).values)
    all_colors = torch.cat([values_a[0], values_b[0]], 2)
    assert torch.equal(colors.sort(2).values, all_colors.sort(2).values)


# ---- argument checks and fallback ----------------------------------------------------------------

@pytest.mark.parametrize(
    "depths_shape, weights_shape, match",
    [
        ((2, 3, 8), (2, 3, 7, 1), "depths_coarse must have shape"),
        ((2, 3, 8, 2), (2, 3, 7, 1), "depths_coarse must have shape"),
        ((2, 3, 3, 1), (2, 3, 2, 1), "D >= 4"),
        ((2, 3, 8, 1), (2, 3, 8, 1), r"weights_coarse must have shape \(N, R, D-1, 1\)"),
        ((2, 3, 8, 1), (2, 4, 7, 1), "weights_coarse must have shape"),
    ],
)
def test_sample_pdf_bad_shapes_raise_naming_the_argument(depths_shape, weights_shape, match):
    with pytest.raises(ValueError, match=match):
        nerfgan_kernels.sample_pdf(torch.rand(depths_shape), torch.rand(weights_shape), 4,
                                   deterministic=True)


def test_sample_pdf_bad_options_dtypes_and_devices_raise():
    depths, weights = coarse_inputs(2, 3, 8)
    sp = nerfgan_kernels.sample_pdf
    with pytest.raises(ValueError, match="depths_coarse must have dtype"):
        sp(depths.half(), weights.half(), 4)
    with pytest.raises(ValueError, match="same dtype"):
        sp(depths, weights.double(), 4)
    with pytest.raises(ValueError, match="same device"):
        sp(depths, weights.to("meta"), 4)
    with pytest.raises(ValueError, match="n must be an int"):
        sp(depths, weights, -1)
    with pytest.raises(ValueError, match="n must be an int"):
        sp(depths, weights, 4.0)
    with pytest.raises(ValueError, match="u must have shape"):
        sp(depths, weights, 4, u=torch.rand(6, 5))
    with pytest.raises(ValueError, match="u must have shape"):
        sp(depths, weights, 4, u=torch.rand(4))
    with pytest.raises(ValueError, match="same dtype"):
        sp(depths, weights, 4, u=torch.rand(6, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="either u or deterministic"):
        sp(depths, weights, 4, u=torch.rand(6, 4), deterministic=True)
    with pytest.raises(ValueError, match="depths_coarse must be a torch.Tensor"):
        sp([[2.0]], weights, 4)


def test_merge_bad_inputs_raise_naming_the_argument():
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 3, 4, 5)
    ms = nerfgan_kernels.merge_samples
    with pytest.raises(ValueError, match="depths_a must have shape"):
        ms(depths_a[..., 0], values_a, depths_b, values_b)
    with pytest.raises(ValueError, match="depths_b must have shape"):
        ms(depths_a, values_a, depths_b[:, :2], values_b)
    with pytest.raises(ValueError, match="values_a must be a list or tuple"):
        ms(depths_a, values_a[0], depths_b, values_b[0])
    with pytest.raises(ValueError, match="same length"):
        ms(depths_a, values_a, depths_b, values_b[:2])
    with pytest.raises(ValueError, match=r"values_a\[1\] must have shape"):
        ms(depths_a, [values_a[0], values_a[1][:, :, :3]], depths_b, values_b[:2])
    with pytest.raises(ValueError, match=r"values_b\[0\] must have shape \(N, R, Sb, C\)"):
        ms(depths_a, values_a[:1], depths_b, [values_b[1]])
    with pytest.raises(ValueError, match=r"values_a\[0\] must have dtype"):
        ms(depths_a, [values_a[0].half()], depths_b, [values_b[0].half()])
    with pytest.raises(ValueError, match=r"values_a\[0\] and values_b\[0\] must have the same"):
        ms(depths_a, values_a[:1], depths_b, [values_b[0].double()])
    with pytest.raises(ValueError, match="depths_a must have dtype"):
        ms(depths_a.int(), values_a, depths_b.int(), values_b)
    with pytest.raises(ValueError, match=r"values_a\[0\] and depths_a must be on the same device"):
        ms(depths_a, [values_a[0].to("meta")], depths_b, [values_b[0].to("meta")])


def test_cpp_checks_name_the_argument():
    # C++ consumers call the kernels without the Python checks: TORCH_CHECK must catch the same.
    ext = torch.ops.nerfgan_kernels
    depths, weights = coarse_inputs(2, 3, 8)
    u = torch.rand(6, 4)
    with pytest.raises(RuntimeError, match="D >= 4"):
        ext.sample_pdf(depths[:, :, :3], weights[:, :, :2], u)
    with pytest.raises(RuntimeError, match="weights_coarse must have shape"):
        ext.sample_pdf(depths, weights[:, :, :5], u)
    with pytest.raises(RuntimeError, match="u must have shape"):
        ext.sample_pdf(depths, weights, torch.rand(5, 4))
    with pytest.raises(RuntimeError, match="depths_coarse must be float32 or float64"):
        ext.sample_pdf(depths.half(), weights.half(), u.half())
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 3, 4, 5)
    with pytest.raises(RuntimeError, match="depths_b must have shape"):
        ext.merge_samples_index(depths_a, depths_b[:1])
    _, index = ext.merge_samples_index(depths_a, depths_b)
    with pytest.raises(RuntimeError, match="index must be int64"):
        ext.merge_gather(index.int(), values_a[0], values_b[0])
    with pytest.raises(RuntimeError, match="values_b must have the channel count"):
        ext.merge_gather(index, values_a[0], values_b[1])
    with pytest.raises(RuntimeError, match="index must have shape"):
        ext.merge_gather(index[:, :, :8], values_a[0], values_b[0])
    with pytest.raises(RuntimeError, match="grad_out must have shape"):
        ext.merge_gather_backward(torch.randn(2, 3, 8, 4), index, 4, 5, True, True)


def test_gather_ignores_out_of_range_indices():
    # A hand-made index (C++ consumers) never reads or writes out of bounds: such slots read 0.
    values_a, values_b = torch.randn(1, 1, 2, 3), torch.randn(1, 1, 1, 3)
    index = torch.tensor([[[2, -1, 7]]])
    out = torch.ops.nerfgan_kernels.merge_gather(index, values_a, values_b)
    assert torch.equal(out[0, 0, 0], values_b[0, 0, 0])
    assert torch.equal(out[0, 0, 1:], torch.zeros(2, 3))
    grad_a, grad_b = torch.ops.nerfgan_kernels.merge_gather_backward(torch.ones(1, 1, 3, 3), index, 2, 1, True, True)
    assert torch.equal(grad_a, torch.zeros(1, 1, 2, 3)) and torch.equal(grad_b, torch.ones(1, 1, 1, 3))


def test_fallback_to_reference_warns_once(monkeypatch):
    monkeypatch.setattr(_ext, "_C", None)
    monkeypatch.setattr(_ext, "_warned", set())
    depths, weights = coarse_inputs(1, 4, 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fine = importance_mod.sample_pdf(depths, weights, 8, deterministic=True)
        merged = importance_mod.merge_samples(depths, [depths], fine, [fine])
    assert sum("falling back" in str(w.message) for w in caught) == 1
    assert torch.equal(fine, _reference.sample_pdf(depths, weights, 8, deterministic=True))
    assert torch.equal(merged[0], _reference.merge_samples(depths, [depths], fine, [fine])[0])


# ---- CUDA (skipped without a GPU) ----------------------------------------------------------------

@requires_cuda
def test_cuda_sample_pdf_matches_fixture_and_reference():
    assert nerfgan_kernels.cuda_available()
    fx = load_file(fixture_path("fixture_importance.safetensors"))
    z, w = fx["depths_coarse"].cuda(), fx["weights"].cuda()
    det = nerfgan_kernels.sample_pdf(z, w, 48, deterministic=True)
    assert rel_err(det.cpu(), fx["depths_fine_det"]) <= TOL
    out = nerfgan_kernels.sample_pdf(z, w, 48, u=fx["u"].cuda().reshape(2, 256, 48))
    assert rel_err(out.cpu(), fx["depths_fine_u"]) <= TOL
    for shape in PDF_SHAPES:
        for dtype in (torch.float32, torch.float64):
            N, R, D, n = shape
            depths, weights = coarse_inputs(N, R, D, dtype)
            u = random_u(N, R, n, dtype)
            ref = _reference.sample_pdf(depths, weights, n, u=u)
            out = nerfgan_kernels.sample_pdf(depths.cuda(), weights.cuda(), n, u=u.cuda())
            assert rel_err(out.cpu(), ref) <= (TOL if dtype == torch.float32 else 1e-12)
    g = torch.Generator(device="cuda")
    a = nerfgan_kernels.sample_pdf(z, w, 48, generator=g.manual_seed(3))
    b = nerfgan_kernels.sample_pdf(z, w, 48, generator=g.manual_seed(3))
    assert torch.equal(a, b)
    empty = nerfgan_kernels.sample_pdf(z[:, :0], w[:, :0], 48, deterministic=True)
    assert empty.shape == (2, 0, 48, 1)


@requires_cuda
@pytest.mark.parametrize("shape", MERGE_SHAPES)
def test_cuda_merge_matches_reference_with_gradients(shape):
    inputs = merge_inputs(*shape)
    N, R, Sa, Sb = shape
    upstream = [torch.randn(N, R, Sa + Sb, c) for c in CHANNELS]
    rdepths, rvalues, rgrads = merge_with_grads(_reference.merge_samples, *inputs, upstream)
    depths_a, values_a, depths_b, values_b = inputs
    depths, values, grads = merge_with_grads(
        nerfgan_kernels.merge_samples, depths_a.cuda(), [v.cuda() for v in values_a],
        depths_b.cuda(), [v.cuda() for v in values_b], [g.cuda() for g in upstream])
    assert torch.equal(depths.cpu(), rdepths)
    assert all(torch.equal(o.cpu(), r) for o, r in zip(values, rvalues))
    assert all(torch.equal(g.cpu(), r) for g, r in zip(grads, rgrads))


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_merge_half_precision_values(dtype):
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 8, 48, 48)
    values_a = [v.to(dtype) for v in values_a]
    values_b = [v.to(dtype) for v in values_b]
    rdepths, rvalues = _reference.merge_samples(depths_a, values_a, depths_b, values_b)
    depths, values = nerfgan_kernels.merge_samples(
        depths_a.cuda(), [v.cuda() for v in values_a], depths_b.cuda(), [v.cuda() for v in values_b])
    assert torch.equal(depths.cpu(), rdepths)
    assert all(o.dtype == dtype and torch.equal(o.cpu(), r) for o, r in zip(values, rvalues))
