"""render_triplane's CUDA kernels (csrc/render/render_triplane_cuda.cu) run on the CPU through the
emulated launch (tests/emulated/), forward and backward, against the CPU kernel and the PyTorch
reference chain. ``python -m pytest -k emulated`` selects them.

The public ``render_triplane`` is routed to the emulated module's ops (CPU tensors then take the
CUDA code path), so the whole Python contract (decoder tensors, depth range, autograd) is the one
the CUDA kernels see on a GPU.
"""

from __future__ import annotations

import pytest
import torch

import nerfgan_kernels
from nerfgan_kernels import TriplaneDecoder, _ext, render_triplane
from nerfgan_kernels.ops import _reference
from helpers import rel_err
from test_render_triplane import make_decoder, make_planes, make_rays, run

pytestmark = [pytest.mark.skipif(not nerfgan_kernels.extension_available(),
                                 reason="compares with the compiled CPU kernel"),
              pytest.mark.usefixtures("default_emulation")]

EXACT = dict(t_min=0.0, alpha_min=0.0)
MASKED = dict(t_min=1e-2, alpha_min=1e-3)
OUTPUTS = ("rgb", "depth", "weights", "weights_sum")
GRADS = ("planes", "weight0", "bias0", "weight1", "bias1")




def reference(planes, decoder, origins, directions, depths, **kw):
    return _reference.render_triplane(planes, decoder, origins, directions, depths, **kw)


def poison_allocator(like: torch.Tensor) -> None:
    """Frees NaN-filled blocks of like's size, so that the next allocations of that size most
    likely reuse one (uninitialised memory, as at::empty gives on a GPU): an output entry that a
    kernel forgets to write then shows as NaN instead of a lucky 0."""
    blocks = [torch.full_like(like, float("nan")) for _ in range(8)]
    del blocks


def on_cpu_and_emulated(emu, monkeypatch, inputs, **kw):
    """(CPU kernel, emulated CUDA kernels) outputs and gradients of the same inputs and upstream
    gradients (test_render_triplane.run: random weights on rgb, depth and weights_sum)."""
    cpu = run(render_triplane, *inputs, **kw)
    for out in cpu[0]:
        poison_allocator(out)
    routed = []

    def kernel_for(device, op):
        routed.append(op)
        return emu.ops

    with monkeypatch.context() as m:
        m.setattr(_ext, "kernel_for", kernel_for)
        got = run(render_triplane, *inputs, **kw)
    assert routed == ["render_triplane"]
    return got, cpu


def max_errors(got, want):
    """{name: rel err} over the outputs and gradients; the shapes must agree."""
    errors = {}
    for names, a, b in ((OUTPUTS, got[0], want[0]), (GRADS, got[1], want[1])):
        for name, x, y in zip(names, a, b):
            assert x.shape == y.shape and x.dtype == y.dtype, name
            errors[name] = rel_err(x, y)
    return errors


def assert_within(errors, tol):
    bad = {name: e for name, e in errors.items() if not e <= tol}
    assert not bad, f"rel err above {tol}: {bad}"


def inputs_for(case, dtype=torch.float64, miss=True, density_bias=1.0, H=8, W=11):
    Np, Nr, Nd, R, S, C, hidden, F = case
    planes = make_planes(Np, C, H, W, dtype)
    decoder = make_decoder(C, hidden, F, dtype, density_bias=density_bias)
    o, d, t = make_rays(Nr, R, Nd, S, dtype, miss=miss)
    return planes, decoder, o, d, t


CASES = [  # (Np, Nr, Nd, R, S, C, hidden, F); make_rays aims every fifth ray away from the box
    (1, 1, 1, 37, 2, 5, 16, 3),
    (1, 2, 2, 23, 13, 7, 16, 3),    # one plane set, two cameras
    (2, 1, 1, 29, 13, 5, 16, 3),    # two latents at shared rays and depths
    (2, 2, 1, 20, 13, 7, 16, 3),    # shared depths
    (1, 1, 2, 21, 13, 5, 16, 3),    # shared planes and rays, per-batch depths
    (2, 1, 2, 25, 1, 7, 16, 3),     # S = 1: no interval, nothing decoded
    (1, 1, 1, 9, 96, 5, 16, 3),     # EG3D's sample count
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("white_back", [False, True])
def test_emulated_render_triplane_float64_exact_matches_cpu_and_reference(emu, monkeypatch, case,
                                                                          white_back):
    emu.emulation_config(seed=case[3])
    inputs = inputs_for(case)
    kw = dict(box_warp=1.0, white_back=white_back, **EXACT)
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, inputs, **kw)
    assert_within(max_errors(got, cpu), 1e-9)
    ref = run(reference, *inputs, **kw)
    assert_within(max_errors(got, ref), 1e-9)
    if case[4] > 1:
        assert all(g.abs().max() > 0 for g in got[1]), "every gradient is exercised"


@pytest.mark.parametrize("case", [CASES[1], CASES[2]])
def test_emulated_render_triplane_float64_masked_matches_cpu(emu, monkeypatch, case):
    """Early termination and empty-space skipping: the same algorithm as the CPU kernel."""
    # A dense decoder: most rays terminate (t_min) before their last sample.
    inputs = inputs_for(case, miss=True, density_bias=8.0)
    kw = dict(box_warp=1.0, white_back=True, **MASKED)
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, inputs, **kw)
    assert_within(max_errors(got, cpu), 1e-9)
    ref = run(reference, *inputs, **kw)  # the reference masks the same intervals
    assert_within(max_errors(got, ref), 1e-9)
    weights = got[0][2]
    exact = run(reference, *inputs, box_warp=1.0, white_back=True)[0][2]
    assert (weights == 0).sum() > (exact == 0).sum()  # something was skipped or terminated


def test_emulated_render_triplane_samples_outside_the_planes(emu, monkeypatch):
    """A small box (box_warp 0.6): many samples have some or all of their taps outside the planes
    (zero padding); channels-last planes (another memory layout of the same values)."""
    planes, decoder, o, d, t = inputs_for((2, 2, 2, 30, 13, 7, 16, 3))
    planes = planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    assert not planes.is_contiguous()
    kw = dict(box_warp=0.6)
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, (planes, decoder, o, d, t), **kw)
    assert_within(max_errors(got, cpu), 1e-9)


def test_emulated_render_triplane_float32(emu, monkeypatch):
    """float32 kernels: within 1e-4 of the float32 CPU kernel and of the float64 reference."""
    case = (2, 1, 1, 27, 13, 7, 16, 3)
    inputs64 = inputs_for(case)
    planes, decoder, o, d, t = inputs64
    f32 = lambda x: x.float()  # noqa: E731
    inputs32 = (f32(planes), TriplaneDecoder(*map(f32, decoder.tensors())), f32(o), f32(d), f32(t))
    for masking in (EXACT, MASKED):
        got, cpu = on_cpu_and_emulated(emu, monkeypatch, inputs32, **masking)
        assert got[0][0].dtype == torch.float32
        assert_within(max_errors(got, cpu), 1e-4)
        ref = run(reference, *inputs64, **masking)
        as64 = ([x.double() for x in got[0]], [x.double() for x in got[1]])
        assert_within(max_errors(as64, ref), 1e-4)


# 2 x 150 rays = 3 blocks of 128 threads: every block sums its own decoder gradients in shared
# memory and adds them to the outputs; caps of 1 and 2 blocks make the grid-stride loops repeat.
@pytest.mark.parametrize("max_blocks", [0, 1, 2])
@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_emulated_render_triplane_several_blocks(emu, monkeypatch, max_blocks, order):
    emu.emulation_config(seed=7, order=order, max_blocks=max_blocks)
    inputs = inputs_for((2, 2, 1, 150, 5, 5, 16, 3))
    for masking in (EXACT, MASKED):
        got, cpu = on_cpu_and_emulated(emu, monkeypatch, inputs, white_back=True, **masking)
        assert_within(max_errors(got, cpu), 1e-9)


def test_emulated_render_triplane_decoder_too_large_for_shared_memory(emu, monkeypatch):
    """hidden 128, F 39, C 9: in float64 neither the decoder's gradients (6440 values) nor all of
    its weights fit in the 48 KiB of shared memory (6144 values), so the kernels read some weights
    from global memory and add the decoder's gradients there; in float32 the gradients fit but
    not every weight."""
    case = (1, 2, 1, 20, 6, 9, 128, 39)
    inputs64 = inputs_for(case)
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, inputs64)
    assert_within(max_errors(got, cpu), 1e-9)
    planes, decoder, o, d, t = inputs64
    f32 = lambda x: x.float()  # noqa: E731
    inputs32 = (f32(planes), TriplaneDecoder(*map(f32, decoder.tensors())), f32(o), f32(d), f32(t))
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, inputs32)
    assert_within(max_errors(got, cpu), 1e-4)


def test_emulated_render_triplane_empty_and_kernels_launched(emu):
    """No rays: empty outputs and zero gradients, no launch. Otherwise both kernels run."""
    planes, decoder, o, d, t = inputs_for((1, 1, 1, 4, 5, 5, 16, 3))
    rng = torch.stack([t.min(), t.max()])
    args = (*decoder.tensors(), o[:, :0], d[:, :0], t[:, :0], rng, 1.0, False, 0.0, 0.0)
    rgb, depth, weights, ws, stats = emu.ops.render_triplane(planes, *args)
    assert rgb.shape == (1, 0, 3) and weights.shape == (1, 0, 4, 1)
    grads = emu.ops.render_triplane_backward(rgb, depth, weights, ws, planes, *args[:-4], stats,
                                             *args[-4:])
    for g, x in zip(grads, (planes, *decoder.tensors())):
        assert g.shape == x.shape and not g.any()
    out = emu.ops.render_triplane(planes, *decoder.tensors(), o, d, t, rng, 1.0, False, 0.0, 0.0)
    emu.ops.render_triplane_backward(*(torch.ones_like(x) for x in out[:4]), planes,
                                     *decoder.tensors(), o, d, t, rng, out[4], 1.0, False, 0.0, 0.0)
    launched = set(emu.emulation_launched())
    assert {"nerfgan_kernels::fused::forward_kernel",
            "nerfgan_kernels::fused::backward_kernel"} <= launched, launched


def test_emulated_render_triplane_gradcheck_float64(emu, monkeypatch):
    monkeypatch.setattr(_ext, "kernel_for", lambda device, op: emu.ops)
    dt = torch.float64
    planes = make_planes(2, 3, 4, 5, dt).requires_grad_(True)
    w = [x.clone().requires_grad_(True) for x in make_decoder(3, 4, 2, dt).tensors()]
    o, d, t = make_rays(1, 5, 1, 6, dt)

    def f(planes, *w):
        rgb, depth, _, ws = render_triplane(planes, TriplaneDecoder(*w), o, d, t, white_back=True)
        return rgb, depth, ws

    assert torch.autograd.gradcheck(f, (planes, *w), eps=1e-6, atol=1e-7)
