"""decode_triplane (the fused point op, issue 18): the C++ CPU kernel against the reference
(triplane_sample + the OSG decoder in PyTorch), forward and every gradient, on every CPU path."""

from __future__ import annotations

import pytest
import torch

import nerfgan_kernels
from nerfgan_kernels import TriplaneDecoder, decode_triplane
from nerfgan_kernels.ops import _reference
from helpers import rel_err, requires_cuda
from test_render_triplane import make_decoder, make_planes

pytestmark = pytest.mark.skipif(not nerfgan_kernels.extension_available(),
                                reason="needs the compiled extension")

GRADS = ("planes", "weight0", "bias0", "weight1", "bias1")


def make_coords(Nc, M, dtype, seed=4, spread=1.3):
    """Points in [-spread/2, spread/2]^3: with spread > 1 some fall outside the box (zeros)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(Nc, M, 3, generator=g, dtype=dtype) - 0.5) * spread


def run(fn, planes, decoder, coords, seed=5, **kw):
    """Outputs and the gradients of a random combination of features and density with respect
    to planes and the four decoder tensors."""
    p = planes.detach().requires_grad_(True)
    dec = TriplaneDecoder(*(t.detach().requires_grad_(True) for t in decoder.tensors()))
    features, density = fn(p, dec, coords, **kw)
    g = torch.Generator().manual_seed(seed)

    def weights(x):  # the same draws whatever the dtype
        return torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)

    loss = (features * weights(features)).sum() + (density * weights(density)).sum()
    grads = torch.autograd.grad(loss, (p, *dec.tensors()))
    return [features.detach(), density.detach()], list(grads)


CASES = [  # (Np, Nc, M, C, hidden, F)
    (1, 1, 37, 5, 7, 3),
    (1, 2, 23, 6, 9, 4),     # one plane set, two point sets
    (2, 1, 19, 5, 16, 3),    # two latents at shared points
    (2, 2, 300, 7, 12, 5),   # several decoder-gradient blocks
    (1, 1, 70, 32, 64, 32),  # EG3D's decoder size
]


@pytest.mark.parametrize("case", CASES)
def test_matches_reference_float64(case, cpu_path):
    Np, Nc, M, C, hidden, F = case
    dt = torch.float64
    planes, decoder = make_planes(Np, C, 8, 11, dt), make_decoder(C, hidden, F, dt)
    coords = make_coords(Nc, M, dt)
    outs, grads = run(decode_triplane, planes, decoder, coords, box_warp=1.1)
    routs, rgrads = run(_reference.decode_triplane, planes, decoder, coords, box_warp=1.1)
    for name, a, b in zip(("features", "density", *GRADS), outs + grads, routs + rgrads):
        assert a.shape == b.shape, name
        assert rel_err(a, b) <= 1e-9, name
    assert (outs[0] != outs[0][:, :1]).any()  # not a constant output


@pytest.mark.parametrize("case", CASES[1:])
def test_float32_within_1e4_of_float64_reference(case):
    Np, Nc, M, C, hidden, F = case
    planes, decoder = make_planes(Np, C, 8, 11, torch.float64), make_decoder(C, hidden, F, torch.float64)
    coords = make_coords(Nc, M, torch.float64)
    routs, rgrads = run(_reference.decode_triplane, planes, decoder, coords)
    f32 = lambda x: x.float()  # noqa: E731
    outs, grads = run(decode_triplane, f32(planes), TriplaneDecoder(*map(f32, decoder.tensors())),
                      f32(coords))
    for a, b in zip(outs + grads, routs + rgrads):
        assert rel_err(a.double(), b) <= 1e-4


def test_non_contiguous_inputs_and_points_outside_the_box():
    dt = torch.float64
    planes = make_planes(1, 5, 7, 9, dt).permute(0, 1, 2, 4, 3)  # (1, 3, 5, 9, 7), not contiguous
    decoder = make_decoder(5, 8, 3, dt)
    dec_nc = TriplaneDecoder(decoder.weight0.t().contiguous().t(), decoder.bias0,
                             decoder.weight1.t().contiguous().t(), decoder.bias1)
    coords = make_coords(1, 160, dt, spread=3.0)[:, ::2]  # (1, 80, 3), not contiguous
    assert not planes.is_contiguous() and not coords.is_contiguous()
    outside = (coords.abs() > 0.5).any(-1)
    assert outside.any() and (~outside).any()
    outs, grads = run(decode_triplane, planes, dec_nc, coords)
    routs, rgrads = run(_reference.decode_triplane, planes, decoder, coords)
    for a, b in zip(outs + grads, routs + rgrads):
        assert rel_err(a, b) <= 1e-9
    # far outside, the planes read zeros: the decoder of zero features
    far = torch.full((1, 2, 3), 5.0, dtype=dt)
    features, density = decode_triplane(planes, decoder, far)
    zf, zd = _reference.decode_features(torch.zeros(1, 2, 5, dtype=dt), decoder)
    assert rel_err(features, zf) <= 1e-12 and rel_err(density, zd) <= 1e-12


def test_empty_points():
    dt = torch.float64
    planes = make_planes(2, 4, 5, 5, dt).requires_grad_(True)
    decoder = make_decoder(4, 6, 3, dt)
    features, density = decode_triplane(planes, decoder, torch.zeros(1, 0, 3, dtype=dt))
    assert features.shape == (2, 0, 3) and density.shape == (2, 0, 1)
    (features.sum() + density.sum()).backward()
    assert planes.grad.shape == planes.shape and not planes.grad.any()


def test_gradcheck_float64():
    dt = torch.float64
    planes = make_planes(2, 3, 4, 5, dt).requires_grad_(True)
    w = [t.clone().requires_grad_(True) for t in make_decoder(3, 4, 2, dt).tensors()]
    coords = make_coords(1, 9, dt)

    def f(planes, *w):
        return decode_triplane(planes, TriplaneDecoder(*w), coords)

    assert torch.autograd.gradcheck(f, (planes, *w), eps=1e-6, atol=1e-7)


def test_opcheck_and_compile():
    dt = torch.float64
    planes = make_planes(2, 3, 4, 5, dt).requires_grad_(True)
    dec = make_decoder(3, 4, 2, dt)
    coords = make_coords(1, 6, dt)
    args = (planes, *(x.requires_grad_(True) for x in dec.tensors()), coords, 1.0)
    torch.library.opcheck(torch.ops.nerfgan_kernels.decode_triplane.default, args)
    compiled = torch.compile(lambda p, c: decode_triplane(p, dec, c), fullgraph=True,
                             backend="aot_eager")
    got = compiled(planes, coords)
    want = decode_triplane(planes, dec, coords)
    assert all(rel_err(a, b) <= 1e-12 for a, b in zip(got, want))


def test_bad_inputs_name_the_argument():
    planes = make_planes(1, 4, 5, 5, torch.float32)
    dec = make_decoder(4, 6, 3, torch.float32)
    coords = make_coords(1, 7, torch.float32)
    with pytest.raises(ValueError, match="decoder takes 5 features"):
        decode_triplane(planes, make_decoder(5, 6, 3, torch.float32), coords)
    with pytest.raises(ValueError, match="coords"):
        decode_triplane(planes, dec, coords[..., :2])
    with pytest.raises(ValueError, match="same dtype"):
        decode_triplane(planes, dec, coords.double())
    with pytest.raises(ValueError, match="no gradient for coords"):
        decode_triplane(planes, dec, coords.clone().requires_grad_(True))
    with pytest.raises(ValueError, match="planes"):
        decode_triplane(planes[:, :2], dec, coords)
    with pytest.raises(RuntimeError, match="coords must have"):
        torch.ops.nerfgan_kernels.decode_triplane(planes, *dec.tensors(), coords[0], 1.0)


@requires_cuda
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_cuda_kernel_matches_cpu_kernel(case, dtype, tol):
    """The CUDA kernels on a GPU (tests/test_decode_triplane_emulated.py runs the same code on
    the CPU) against the CPU kernel."""
    Np, Nc, M, C, hidden, F = case
    planes, decoder = make_planes(Np, C, 6, 5, dtype), make_decoder(C, hidden, F, dtype)
    coords = make_coords(Nc, M, dtype)
    out_c, grads_c = run(decode_triplane, planes, decoder, coords)
    dev = TriplaneDecoder(*(t.cuda() for t in decoder.tensors()))
    out_g, grads_g = run(decode_triplane, planes.cuda(), dev, coords.cuda())
    for a, b in zip(out_g + grads_g, out_c + grads_c):
        assert a.is_cuda and rel_err(a.cpu(), b) <= tol
