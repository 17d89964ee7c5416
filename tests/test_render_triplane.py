"""render_triplane (the fused renderer, issue 18): the C++ CPU kernel against the reference chain
(triplane_sample + the OSG decoder + composite in PyTorch), forward and every gradient."""

from __future__ import annotations

import pytest
import torch

import nerfgan_kernels
from nerfgan_kernels import TriplaneDecoder, render_triplane
from nerfgan_kernels.ops import _reference
from nerfgan_kernels.render.decoder import OSGDecoder
from helpers import rel_err, requires_cuda

pytestmark = pytest.mark.skipif(not nerfgan_kernels.extension_available(),
                                reason="needs the compiled extension")


def make_decoder(C, hidden, F, dtype, seed=0, density_bias=1.0):
    g = torch.Generator().manual_seed(seed)
    w0 = torch.randn(hidden, C, generator=g, dtype=dtype) / C ** 0.5 * 2
    b0 = torch.randn(hidden, generator=g, dtype=dtype)
    w1 = torch.randn(1 + F, hidden, generator=g, dtype=dtype) / hidden ** 0.5 * 2
    b1 = torch.randn(1 + F, generator=g, dtype=dtype)
    b1[0] += density_bias
    return TriplaneDecoder(w0, b0, w1, b1)


def make_rays(Nr, R, Nd, S, dtype, seed=1, miss=True):
    """Rays through the box [-0.5, 0.5]^3 from a sphere of radius 1.5 (plus some that miss),
    depths sorted in [1, 2]."""
    g = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(Nr, R, 3, generator=g, dtype=dtype), dim=-1) * 1.5
    target = (torch.rand(Nr, R, 3, generator=g, dtype=dtype) - 0.5) * 0.6
    if miss:
        target[:, ::5] = origins[:, ::5] * 3  # pointing away from the box
    directions = torch.nn.functional.normalize(target - origins, dim=-1)
    depths = torch.sort(1.0 + torch.rand(Nd, R, S, 1, generator=g, dtype=dtype), dim=2).values
    return origins, directions, depths


def make_planes(Np, C, H, W, dtype, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(Np, 3, C, H, W, generator=g, dtype=dtype)


def run(fn, planes, decoder, origins, directions, depths, seed=3, **kw):
    """Outputs and the gradients of a random combination of rgb, depth and weights_sum with
    respect to planes and the four decoder tensors."""
    p = planes.detach().requires_grad_(True)
    dec = TriplaneDecoder(*(t.detach().requires_grad_(True) for t in decoder.tensors()))
    out = fn(p, dec, origins, directions, depths, **kw)
    rgb, depth, weights, weights_sum = out
    g = torch.Generator().manual_seed(seed)
    def weights(x):  # the same draws whatever the dtype
        return torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)

    loss = ((rgb * weights(rgb)).sum() + (depth * weights(depth)).sum()
            + (weights_sum * weights(weights_sum)).sum())
    grads = torch.autograd.grad(loss, (p, *dec.tensors()))
    return [t.detach() for t in out], list(grads)


def reference(planes, decoder, origins, directions, depths, **kw):
    return _reference.render_triplane(planes, decoder, origins, directions, depths, **kw)


CASES = [  # (Np, Nr, Nd, R, S, C, hidden, F)
    (1, 1, 1, 37, 2, 5, 7, 3),
    (1, 2, 2, 23, 13, 6, 9, 4),     # one plane set, two cameras
    (2, 1, 1, 19, 13, 5, 16, 3),    # two latents at shared rays
    (2, 2, 1, 11, 96, 7, 12, 5),    # shared depths
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("white_back", [False, True])
def test_matches_reference_float64(case, white_back):
    Np, Nr, Nd, R, S, C, hidden, F = case
    dt = torch.float64
    planes = make_planes(Np, C, 8, 11, dt)
    decoder = make_decoder(C, hidden, F, dt)
    o, d, t = make_rays(Nr, R, Nd, S, dt)
    kw = dict(box_warp=1.0, white_back=white_back)
    outs, grads = run(render_triplane, planes, decoder, o, d, t, **kw)
    routs, rgrads = run(reference, planes, decoder, o, d, t, **kw)
    for name, a, b in zip(("rgb", "depth", "weights", "weights_sum"), outs, routs):
        assert a.shape == b.shape, name
        assert rel_err(a, b) <= 1e-10, name
    for name, a, b in zip(("planes", "weight0", "bias0", "weight1", "bias1"), grads, rgrads):
        assert a.shape == b.shape, name
        assert b.abs().max() > 0, name  # the case exercises this gradient
        assert rel_err(a, b) <= 1e-9, name


def assert_float32_near_float64_reference(planes, decoder, o, d, t):
    """The float32 kernel's outputs and gradients within 1e-4 of the float64 reference."""
    routs, rgrads = run(reference, planes, decoder, o, d, t)
    f32 = lambda x: x.float()  # noqa: E731
    outs, grads = run(render_triplane, f32(planes), TriplaneDecoder(*map(f32, decoder.tensors())),
                      f32(o), f32(d), f32(t))
    for a, b in zip(outs + grads, routs + rgrads):
        assert rel_err(a.double(), b) <= 1e-4


@pytest.mark.parametrize("case", CASES[1:3])
def test_float32_within_1e4_of_float64_reference(case):
    Np, Nr, Nd, R, S, C, hidden, F = case
    planes = make_planes(Np, C, 8, 11, torch.float64)
    decoder = make_decoder(C, hidden, F, torch.float64)
    o, d, t = make_rays(Nr, R, Nd, S, torch.float64)
    assert_float32_near_float64_reference(planes, decoder, o, d, t)


def test_eg3d_size_sampling_float32_against_float64():
    """96 samples in EG3D's depth range on C = 32 planes, hidden 64, F = 32."""
    planes = make_planes(1, 32, 32, 32, torch.float64) * 0.5
    decoder = make_decoder(32, 64, 32, torch.float64, density_bias=3.0)
    o, d, _ = make_rays(1, 64, 1, 96, torch.float64)
    t = torch.sort(2.25 + 1.05 * torch.rand(1, 64, 96, 1, dtype=torch.float64), dim=2).values
    o = o * 2.7 / 1.5
    assert_float32_near_float64_reference(planes, decoder, o, d, t)


def test_masking_matches_masked_reference_and_stays_near_exact():
    dt = torch.float64
    planes = make_planes(1, 6, 8, 11, dt)
    decoder = make_decoder(6, 9, 4, dt, density_bias=30.0)  # dense: rays terminate early
    o, d, t = make_rays(1, 41, 1, 48, dt, miss=False)
    kw = dict(t_min=1e-4, alpha_min=1e-6)
    outs, grads = run(render_triplane, planes, decoder, o, d, t, **kw)
    routs, rgrads = run(reference, planes, decoder, o, d, t, **kw)
    for a, b in zip(outs + grads, routs + rgrads):
        assert rel_err(a, b) <= 1e-9
    exact = render_triplane(planes, decoder, o, d, t)
    assert (outs[0] - exact[0]).abs().max() <= 1e-3
    assert (outs[2] == 0).sum() > (exact[2] == 0).sum()  # something was skipped


def test_gradcheck_float64():
    dt = torch.float64
    planes = make_planes(1, 3, 4, 5, dt).requires_grad_(True)
    dec = make_decoder(3, 4, 2, dt)
    w = [t.clone().requires_grad_(True) for t in dec.tensors()]
    o, d, t = make_rays(1, 3, 1, 5, dt, miss=False)

    def f(planes, *w):
        rgb, depth, _, ws = render_triplane(planes, TriplaneDecoder(*w), o, d, t)
        return rgb, depth, ws

    assert torch.autograd.gradcheck(f, (planes, *w), eps=1e-6, atol=1e-7)


def test_from_module_is_the_osg_decoder():
    dec = OSGDecoder(n_features=6, hidden_dim=10, decoder_lr_mul=0.7, decoder_output_dim=5)
    with torch.no_grad():
        for p in dec.parameters():
            p.normal_()
    feats = torch.randn(2, 9, 6)
    td = TriplaneDecoder.from_module(dec)
    colors, density = _reference.decode_features(feats, td)
    out = dec(feats)
    assert rel_err(colors, out["rgb"]) <= 1e-6 and rel_err(density, out["sigma"]) <= 1e-6
    # gradients reach the module's raw parameters through the effective tensors
    planes = make_planes(1, 6, 5, 5, torch.float32)
    o, d, t = make_rays(1, 7, 1, 6, torch.float32)
    rgb = render_triplane(planes, dec, o, d, t)[0]
    rgb.sum().backward()
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in dec.parameters())


def test_opcheck():
    dt = torch.float64
    planes = make_planes(2, 3, 4, 5, dt).requires_grad_(True)
    dec = make_decoder(3, 4, 2, dt)
    o, d, t = make_rays(1, 6, 1, 5, dt)
    args = (planes, *(x.requires_grad_(True) for x in dec.tensors()), o, d, t,
            torch.tensor([1.0, 2.0], dtype=dt), 1.0, False, 0.0, 0.0)
    torch.library.opcheck(torch.ops.nerfgan_kernels.render_triplane.default, args)


def test_bad_inputs_name_the_argument():
    planes = make_planes(1, 4, 5, 5, torch.float32)
    dec = make_decoder(4, 6, 3, torch.float32)
    o, d, t = make_rays(1, 7, 1, 6, torch.float32)
    with pytest.raises(ValueError, match="decoder takes 5 features"):
        render_triplane(planes, make_decoder(5, 6, 3, torch.float32), o, d, t)
    with pytest.raises(ValueError, match="ray_directions"):
        render_triplane(planes, dec, o, d[:, :3], t)
    with pytest.raises(ValueError, match="depths"):
        render_triplane(planes, dec, o, d, t[..., 0])
    with pytest.raises(ValueError, match="no gradient for ray_origins"):
        render_triplane(planes, dec, o.requires_grad_(True), d, t)
    with pytest.raises(ValueError, match="hidden"):
        TriplaneDecoder(torch.zeros(200, 4), torch.zeros(200), torch.zeros(4, 200), torch.zeros(4))
    with pytest.raises(ValueError, match="OSG decoder"):
        render_triplane(planes, torch.nn.Linear(4, 4), o.detach(), d, t)


@requires_cuda
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@pytest.mark.parametrize("masking", [dict(t_min=0.0, alpha_min=0.0), dict(t_min=1e-2, alpha_min=1e-3)])
def test_cuda_kernel_matches_cpu_kernel(case, dtype, tol, masking):
    """The CUDA kernels (a GPU run; tests/test_render_triplane_emulated.py runs the same code on
    the CPU) against the CPU kernel: outputs and every gradient, exact and masked."""
    assert nerfgan_kernels.cuda_available()
    Np, Nr, Nd, R, S, C, hidden, F = case
    planes, decoder = make_planes(Np, C, 6, 5, dtype), make_decoder(C, hidden, F, dtype)
    origins, directions, depths = make_rays(Nr, R, Nd, S, dtype)
    out_c, grads_c = run(nerfgan_kernels.render_triplane, planes, decoder, origins, directions,
                         depths, **masking)
    dev = TriplaneDecoder(*(t.cuda() for t in decoder.tensors()))
    out_g, grads_g = run(nerfgan_kernels.render_triplane, planes.cuda(), dev, origins.cuda(),
                         directions.cuda(), depths.cuda(), **masking)
    for a, b in zip(out_g + grads_g, out_c + grads_c):
        assert a.is_cuda and rel_err(a.cpu(), b) <= tol


@pytest.mark.parametrize("masking", [dict(t_min=0.0, alpha_min=0.0), dict(t_min=1e-3, alpha_min=1e-4)])
def test_known_densities_change_nothing_and_return_densities_are_the_decoders(masking):
    """A coarse pass's densities (return_densities) merged into the final samples as
    known_densities (NaN at the fine ones): the same outputs and gradients as decoding them all;
    the returned densities are the decoder's (NaN past the march's end)."""
    dt = torch.float64
    planes = make_planes(2, 6, 8, 11, dt)
    decoder = make_decoder(6, 9, 4, dt, density_bias=-2.0)  # empty space and a surface
    o, d, t = make_rays(1, 31, 1, 13, dt)
    coarse = render_triplane(planes, decoder, o, d, t, return_densities=True, **masking)
    dens = coarse[4]
    assert dens.shape == (2, 31, 13, 1)
    coords = (o.unsqueeze(-2) + t * d.unsqueeze(-2)).reshape(1, -1, 3)
    want = _reference.decode_triplane(planes, decoder, coords)[1].reshape(2, 31, 13, 1)
    finite = ~torch.isnan(dens)
    assert finite.any() and rel_err(dens[finite], want[finite]) <= 1e-12
    if masking["t_min"] == 0:
        assert finite.all()
    fine = torch.sort(1.0 + torch.rand(1, 31, 7, 1, dtype=dt,
                                       generator=torch.Generator().manual_seed(9)), dim=2).values
    depths, (known,) = nerfgan_kernels.merge_samples(t.expand(2, -1, -1, -1), [dens],
                                                     fine.expand(2, -1, -1, -1),
                                                     [torch.full((2, 31, 7, 1), float("nan"), dtype=dt)])
    with_known = run(lambda *a, **k: render_triplane(*a, known_densities=known, **k), planes,
                     decoder, o, d, depths, **masking)
    without = run(render_triplane, planes, decoder, o, d, depths, **masking)
    for a, b in zip(with_known[0] + with_known[1], without[0] + without[1]):
        assert rel_err(a, b) <= 1e-12
    with pytest.raises(ValueError, match="known_densities"):
        render_triplane(planes, decoder, o, d, depths, known_densities=known[:, :5])


def with_threads(n, fn, *args, **kw):
    """fn(*args, **kw) with torch's CPU thread count set to n (restored after)."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return fn(*args, **kw)
    finally:
        torch.set_num_threads(threads)


def test_ray_order_and_thread_count_change_nothing():
    """The CPU kernels visit the rays in their own (Morton) order and split them among threads:
    permuted rays give the permuted outputs bit for bit, and the outputs and decoder gradients
    do not depend on the thread count (the planes' gradient only up to rounding)."""
    dt = torch.float32
    planes = make_planes(1, 6, 16, 13, dt)
    decoder = make_decoder(6, 9, 4, dt, density_bias=-1.0)
    o, d, t = make_rays(1, 301, 1, 13, dt)
    perm = torch.randperm(301, generator=torch.Generator().manual_seed(5))
    out1, grads1 = with_threads(1, run, render_triplane, planes, decoder, o, d, t)
    out2, grads2 = with_threads(2, run, render_triplane, planes, decoder, o, d, t)
    with torch.no_grad():
        permuted = with_threads(2, render_triplane, planes, decoder, o[:, perm], d[:, perm], t[:, perm])
    for a, b in zip(out1, out2):
        assert torch.equal(a, b)
    for a, b in zip(grads1[1:], grads2[1:]):
        assert torch.equal(a, b)
    assert rel_err(grads2[0], grads1[0]) <= 1e-6
    for a, b in zip(permuted, out1):
        assert torch.equal(a, b[:, perm])


def test_banded_scatter_equals_direct_scatter():
    """The CPU backward scatters the planes' gradient into one copy per thread while the copies
    fit in 64 MiB, and through the banded scatter beyond: 2 x 50 MB planes take the direct path
    with 2 threads and the banded one with 4; both give the same gradients (the planes' up to
    rounding), on both plane sets."""
    dt = torch.float32
    planes = make_planes(2, 32, 256, 256, dt)
    decoder = make_decoder(32, 16, 5, dt, density_bias=-1.0)
    o, d, t = make_rays(2, 150, 1, 13, dt)
    out_direct, grads_direct = with_threads(2, run, render_triplane, planes, decoder, o, d, t)
    out_banded, grads_banded = with_threads(4, run, render_triplane, planes, decoder, o, d, t)
    for a, b in zip(out_direct, out_banded):
        assert torch.equal(a, b)
    for a, b in zip(grads_direct[1:], grads_banded[1:]):
        assert torch.equal(a, b)
    assert grads_direct[0][1].abs().sum() > 0  # the second plane set receives its rays' gradient
    assert rel_err(grads_banded[0], grads_direct[0]) <= 1e-6
