"""composite: CPU kernel vs the PyTorch reference vs EG3D's recorded ray marcher output."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import nerfgan_kernels
from nerfgan_kernels.ops import _reference
from helpers import fixture_path, rel_err, requires_cuda

TOL = 1e-5
EXACT = dict(t_min=0.0, alpha_min=0.0)


def random_rays(N, R, S, C, dtype=torch.float32, seed=0, density_scale=3.0, density_shift=0.0):
    """Random samples (never zeros): colours in [-0.001, 1.001] as EG3D's decoder gives, raw
    densities ~ N(shift, scale), sorted depths in [2.25, 3.3]."""
    g = torch.Generator().manual_seed(seed)
    colors = torch.rand(N, R, S, C, generator=g, dtype=dtype) * 1.002 - 0.001
    densities = torch.randn(N, R, S, 1, generator=g, dtype=dtype) * density_scale + density_shift
    depths = torch.sort(2.25 + 1.05 * torch.rand(N, R, S, 1, generator=g, dtype=dtype), dim=2).values
    return colors, densities, depths


def run(fn, colors, densities, depths, upstream, **kw):
    c = colors.detach().requires_grad_(True)
    s = densities.detach().requires_grad_(True)
    rgb, depth, weights = fn(c, s, depths, **kw)[:3]
    loss = (rgb * upstream[0]).sum() + (depth * upstream[1]).sum() + (weights * upstream[2]).sum()
    gc, gs = torch.autograd.grad(loss, (c, s))
    return (rgb, depth, weights), (gc, gs)


def upstream_for(N, R, S, C, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(N, R, C, generator=g, dtype=dtype), torch.randn(N, R, 1, generator=g, dtype=dtype),
            torch.randn(N, R, S - 1, 1, generator=g, dtype=dtype))


@pytest.mark.parametrize("white_back", [False, True])
def test_matches_eg3d_fixture(white_back):
    fx = load_file(fixture_path("fixture_ray_marcher.safetensors"))
    suffix = "_white_back" if white_back else ""
    expected = (fx["rgb_final" + suffix], fx["depth_final" + suffix], fx["weights"])
    for fn in (_reference.composite, nerfgan_kernels.composite):
        kw = dict(white_back=white_back, **(EXACT if fn is nerfgan_kernels.composite else {}))
        out = fn(fx["colors"], fx["densities"], fx["depths"], **kw)
        for o, e in zip(out, expected):
            assert rel_err(o, e) <= TOL


# (N, R, S, C): one sample per ray, two samples, channel counts not multiples of 4/8/32.
SHAPES = [(2, 64, 96, 32), (1, 33, 48, 3), (3, 5, 2, 7), (2, 9, 1, 4), (1, 17, 13, 33)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("white_back", [False, True])
def test_cpu_kernel_matches_reference_unmasked(shape, white_back, cpu_path):
    colors, densities, depths = random_rays(*shape)
    up = upstream_for(*shape)
    out, grads = run(nerfgan_kernels.composite, colors, densities, depths, up, white_back=white_back, **EXACT)
    ref, ref_grads = run(_reference.composite, colors, densities, depths, up, white_back=white_back)
    for o, r in zip(out, ref):
        assert rel_err(o, r) <= TOL
    for g, r in zip(grads, ref_grads):
        assert rel_err(g, r) <= 1e-4  # float32 backward sums differ in order from autograd's


@pytest.mark.parametrize("t_min, alpha_min", [(1e-2, 0.0), (0.0, 1e-3), (1e-3, 1e-4)])
def test_cpu_kernel_matches_reference_masked(t_min, alpha_min, cpu_path):
    shape = (2, 40, 48, 5)
    colors, densities, depths = random_rays(*shape)
    densities[:, ::2] += 8.0  # dense rays: terminate early
    densities[:, 1::2] -= 6.0  # sparse rays: many intervals with tiny alpha
    up = upstream_for(*shape)
    kw = dict(t_min=t_min, alpha_min=alpha_min)
    out, grads = run(nerfgan_kernels.composite, colors, densities, depths, up, **kw)
    ref, ref_grads = run(_reference.composite, colors, densities, depths, up, **kw)
    # On the sparse rays alpha = 1 - exp(-x) with x ~ 1e-5: one ulp of exp (glibc vs torch's
    # vectorized exp) is 1e-2 of alpha, and depth = sum(w t) / sum(w) with sum(w) ~ 1e-3 shows it.
    for o, r, tol in zip(out, ref, (TOL, 1e-4, TOL)):
        assert rel_err(o, r) <= tol
    for g, r in zip(grads, ref_grads):
        assert rel_err(g, r) <= 1e-4
    # the masking really skipped samples here (otherwise this test could not fail)
    kept = nerfgan_kernels.composite(colors, densities, depths, return_stats=True, **kw)[3]
    assert kept.sum() < 2 * 40 * 47


@pytest.mark.parametrize("masking", [EXACT, dict(t_min=0.05, alpha_min=1e-3)])
@pytest.mark.parametrize("white_back", [False, True])
def test_gradcheck_float64(masking, white_back, cpu_path):
    colors, densities, depths = random_rays(2, 3, 6, 3, dtype=torch.float64, seed=4, density_scale=2.0)
    colors.requires_grad_(True)
    densities.requires_grad_(True)

    def fn(c, s):
        return nerfgan_kernels.composite(c, s, depths, white_back=white_back, **masking)

    assert torch.autograd.gradcheck(fn, (colors, densities), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_masking_error_bound_and_skips():
    # A surface-like ray batch: empty space, then a dense shell, then occluded samples.
    N, R, S, C = 2, 256, 96, 32
    colors, _, depths = random_rays(N, R, S, C, seed=7)
    t = torch.linspace(-1, 1, S).view(1, 1, S, 1)
    surface = torch.rand(N, R, 1, 1, generator=torch.Generator().manual_seed(8)) * 1.2 - 0.6
    densities = 40 * torch.sigmoid((t - surface) * 20) - 20 + torch.randn(N, R, S, 1) * 0.5
    exact = nerfgan_kernels.composite(colors, densities, depths, **EXACT)
    masked = nerfgan_kernels.composite(colors, densities, depths, return_stats=True)
    t_min, alpha_min = 1e-4, 1e-6  # the documented defaults
    eps = t_min + 2 * (S - 1) * alpha_min
    c_mid_max = colors.abs().max().item()
    assert (masked[0] - exact[0]).abs().max().item() <= 2 * eps * c_mid_max
    w_exact, w_masked = exact[2].sum(2), masked[2].sum(2)
    assert (w_masked - w_exact).abs().max().item() <= eps
    lo, hi = depths.min().item(), depths.max().item()
    assert ((masked[1] - exact[1]).abs() * w_masked).max().item() <= 2 * eps * (hi - lo) + 1e-6
    skipped = 1 - masked[3].sum().item() / (N * R * (S - 1))
    assert skipped > 0.3  # most empty and occluded intervals were not marched


def test_empty_and_opaque_rays(cpu_path):
    colors, densities, depths = random_rays(1, 4, 16, 3)
    densities[0, 0] = -200.0  # empty ray: alpha underflows to 0, weight total 0
    densities[0, 1, :2] = 1e4  # opaque first interval: all weight there
    for fn, kw in ((nerfgan_kernels.composite, EXACT), (nerfgan_kernels.composite, {}),
                   (_reference.composite, {})):
        rgb, depth, weights = fn(colors, densities, depths, **kw)
        assert torch.equal(rgb[0, 0], -torch.ones(3))
        assert depth[0, 0, 0] == depths.max()  # EG3D: NaN -> inf -> clamped to the max depth
        torch.testing.assert_close(weights[0, 1, 0, 0], torch.tensor(1.0))
        assert weights[0, 1, 1:].abs().max() < 1e-9
    c = colors.clone().requires_grad_(True)
    s = densities.clone().requires_grad_(True)
    rgb, depth, weights = nerfgan_kernels.composite(c, s, depths, **EXACT)
    (rgb.sum() + depth.sum() + weights.sum()).backward()
    assert torch.isfinite(c.grad).all() and torch.isfinite(s.grad).all()
    assert torch.equal(c.grad[0, 0], torch.zeros_like(c.grad[0, 0]))
    ref_gc, ref_gs = run(_reference.composite, colors, densities, depths,
                         (torch.ones(1, 4, 3), torch.ones(1, 4, 1), torch.ones(1, 4, 15, 1)))[1]
    torch.testing.assert_close(c.grad, ref_gc, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(s.grad, ref_gs, rtol=1e-4, atol=1e-6)


def test_empty_batch_and_one_sample():
    for shape in [(0, 5, 4, 3), (2, 0, 4, 3)]:
        colors = torch.rand(shape)
        out = nerfgan_kernels.composite(colors, torch.rand(*shape[:3], 1), torch.rand(*shape[:3], 1))
        assert out[0].shape == (*shape[:2], 3) and out[2].shape == (*shape[:2], 3, 1)
    colors, densities, depths = random_rays(2, 3, 1, 4)
    rgb, depth, weights = nerfgan_kernels.composite(colors, densities, depths, white_back=True)
    assert weights.shape == (2, 3, 0, 1)
    assert torch.equal(rgb, torch.ones(2, 3, 4))  # white background, nothing marched


def test_depth_range_makes_chunking_invariant():
    colors, densities, depths = random_rays(1, 64, 24, 4, density_shift=-3.0)
    full = nerfgan_kernels.composite(colors, densities, depths, **EXACT)
    lo, hi = depths.min(), depths.max()
    chunks = [nerfgan_kernels.composite(colors[:, i:i + 16], densities[:, i:i + 16], depths[:, i:i + 16],
                                        depth_range=(lo, hi), **EXACT) for i in range(0, 64, 16)]
    for k in range(3):
        assert torch.equal(torch.cat([ch[k] for ch in chunks], 1), full[k])
    # without the global range a chunk clamps to its own range, as EG3D would
    own = nerfgan_kernels.composite(colors[:, :16], densities[:, :16], depths[:, :16], **EXACT)
    ref = _reference.composite(colors[:, :16], densities[:, :16], depths[:, :16])
    assert rel_err(own[1], ref[1]) <= TOL


def test_non_contiguous_inputs(cpu_path):
    colors, densities, depths = random_rays(2, 8, 12, 6)
    big = torch.rand(2, 8, 12, 12)
    big[..., ::2] = colors
    dens_t = densities.transpose(0, 1).contiguous().transpose(0, 1)
    out = nerfgan_kernels.composite(big[..., ::2], dens_t, depths, **EXACT)
    ref = _reference.composite(colors, densities, depths)
    for o, r in zip(out, ref):
        assert rel_err(o, r) <= TOL


def test_bad_inputs_raise_naming_the_argument():
    colors, densities, depths = random_rays(1, 4, 8, 3)
    with pytest.raises(ValueError, match="colors must have shape"):
        nerfgan_kernels.composite(colors[0], densities, depths)
    with pytest.raises(ValueError, match="densities must have shape"):
        nerfgan_kernels.composite(colors, densities[:, :, :4], depths)
    with pytest.raises(ValueError, match="depths must have shape"):
        nerfgan_kernels.composite(colors, densities, depths[..., 0])
    with pytest.raises(ValueError, match="same dtype"):
        nerfgan_kernels.composite(colors, densities.double(), depths)
    with pytest.raises(ValueError, match="colors must have dtype"):
        nerfgan_kernels.composite(colors.half(), densities.half(), depths.half())
    with pytest.raises(ValueError, match="t_min"):
        nerfgan_kernels.composite(colors, densities, depths, t_min=1.5)
    with pytest.raises(ValueError, match="alpha_min"):
        nerfgan_kernels.composite(colors, densities, depths, alpha_min=-1)
    with pytest.raises(ValueError, match="depth_range"):
        nerfgan_kernels.composite(colors, densities, depths, depth_range=(1.0,))
    with pytest.raises(ValueError, match="colors must have shape"):
        nerfgan_kernels.composite(colors[:, :, :0], densities[:, :, :0], depths[:, :, :0])


def test_cpp_checks_name_the_argument():
    from nerfgan_kernels import _ext
    colors, densities, depths = random_rays(1, 4, 8, 3)
    rng = torch.tensor([2.25, 3.3])
    with pytest.raises(RuntimeError, match="densities must have shape"):
        torch.ops.nerfgan_kernels.composite(colors, densities[:, :2], depths, rng, False, 0.0, 0.0)
    with pytest.raises(RuntimeError, match="depth_range must have shape"):
        torch.ops.nerfgan_kernels.composite(colors, densities, depths, rng[:1], False, 0.0, 0.0)
    with pytest.raises(RuntimeError, match="t_min must be in"):
        torch.ops.nerfgan_kernels.composite(colors, densities, depths, rng, False, 2.0, 0.0)
    stats = torch.ops.nerfgan_kernels.composite(colors, densities, depths, rng, False, 0.0, 0.0)[3]
    with pytest.raises(RuntimeError, match="grad_rgb must have shape"):
        torch.ops.nerfgan_kernels.composite_backward(
            torch.zeros(1, 4, 2), torch.zeros(1, 4, 1), torch.zeros(1, 4, 7, 1), colors, densities,
            depths, rng, stats, False, 0.0, 0.0)


# ---- CUDA (skipped without a GPU) --------------------------------------------------------------

@requires_cuda
@pytest.mark.parametrize("masking", [EXACT, {}])
@pytest.mark.parametrize("white_back", [False, True])
def test_cuda_matches_reference(masking, white_back):
    shape = (2, 300, 96, 32)
    colors, densities, depths = random_rays(*shape, density_shift=1.0)
    up = upstream_for(*shape)
    kw = dict(white_back=white_back, **masking)
    out, grads = run(nerfgan_kernels.composite, colors.cuda(), densities.cuda(), depths.cuda(),
                     [u.cuda() for u in up], **kw)
    ref, ref_grads = run(nerfgan_kernels.composite, colors, densities, depths, up, **kw)
    for o, r in zip(out, ref):
        assert rel_err(o.cpu(), r) <= TOL
    for g, r in zip(grads, ref_grads):
        assert rel_err(g.cpu(), r) <= 1e-4
