"""decode_triplane's CUDA kernels (csrc/render/decode_triplane_cuda.cu) run on the CPU through
the emulated launch (tests/emulated/), forward and backward, against the CPU kernel and the
reference. ``python -m pytest -k emulated`` selects them."""

from __future__ import annotations

import pytest
import torch

import nerfgan_kernels
from nerfgan_kernels import TriplaneDecoder, _ext, decode_triplane
from nerfgan_kernels.ops import _reference
from helpers import rel_err
from test_decode_triplane import CASES, make_coords, run
from test_render_triplane import make_decoder, make_planes
from test_render_triplane_emulated import poison_allocator

pytestmark = [pytest.mark.skipif(not nerfgan_kernels.extension_available(),
                                 reason="compares with the compiled CPU kernel"),
              pytest.mark.usefixtures("default_emulation")]


def on_cpu_and_emulated(emu, monkeypatch, planes, decoder, coords):
    cpu = run(decode_triplane, planes, decoder, coords)
    for out in cpu[0]:
        poison_allocator(out)
    routed = []

    def kernel_for(device, op):
        routed.append(op)
        return emu.ops

    with monkeypatch.context() as m:
        m.setattr(_ext, "kernel_for", kernel_for)
        got = run(decode_triplane, planes, decoder, coords)
    assert routed == ["decode_triplane"]
    return got, cpu


def assert_close(got, want, tol):
    for a, b in zip(got[0] + got[1], want[0] + want[1]):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert rel_err(a, b) <= tol


@pytest.mark.parametrize("case", CASES)
def test_emulated_decode_triplane_float64_matches_cpu_and_reference(emu, monkeypatch, case):
    Np, Nc, M, C, hidden, F = case
    dt = torch.float64
    planes, decoder = make_planes(Np, C, 8, 11, dt), make_decoder(C, hidden, F, dt)
    coords = make_coords(Nc, M, dt)
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, planes, decoder, coords)
    assert_close(got, cpu, 1e-9)
    assert_close(got, run(_reference.decode_triplane, planes, decoder, coords), 1e-9)


@pytest.mark.parametrize("max_blocks, order", [(1, "forward"), (3, "reverse"), (0, "shuffle")])
def test_emulated_decode_triplane_grid_stride_and_block_orders(emu, monkeypatch, max_blocks, order):
    """Fewer blocks than points (each thread strides over several) and any block order."""
    emu.emulation_config(seed=3, order=order, max_blocks=max_blocks)
    dt = torch.float32
    planes, decoder = make_planes(2, 7, 6, 5, dt), make_decoder(7, 12, 5, dt)
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, planes, decoder, make_coords(1, 333, dt))
    assert_close(got, cpu, 1e-4)


def test_emulated_decode_triplane_decoder_too_large_for_shared_memory(emu, monkeypatch):
    """hidden 128, F 39, C 9 in float64: weights and gradients partly in global memory."""
    dt = torch.float64
    planes, decoder = make_planes(1, 9, 6, 5, dt), make_decoder(9, 128, 39, dt)
    got, cpu = on_cpu_and_emulated(emu, monkeypatch, planes, decoder, make_coords(2, 40, dt))
    assert_close(got, cpu, 1e-9)


def test_emulated_decode_triplane_empty_and_kernels_launched(emu):
    dt = torch.float64
    planes, decoder = make_planes(1, 5, 4, 4, dt), make_decoder(5, 6, 3, dt)
    features, density = emu.ops.decode_triplane(planes, *decoder.tensors(),
                                                torch.zeros(1, 0, 3, dtype=dt), 1.0)
    assert features.shape == (1, 0, 3) and density.shape == (1, 0, 1)
    coords = make_coords(1, 10, dt)
    features, density = emu.ops.decode_triplane(planes, *decoder.tensors(), coords, 1.0)
    emu.ops.decode_triplane_backward(torch.ones_like(features), torch.ones_like(density), planes,
                                     *decoder.tensors(), coords, 1.0)
    launched = set(emu.emulation_launched())
    assert {"nerfgan_kernels::fused::decode_forward_kernel",
            "nerfgan_kernels::fused::decode_backward_kernel"} <= launched, launched


def test_emulated_decode_triplane_gradcheck_float64(emu, monkeypatch):
    monkeypatch.setattr(_ext, "kernel_for", lambda device, op: emu.ops)
    dt = torch.float64
    planes = make_planes(2, 3, 4, 5, dt).requires_grad_(True)
    w = [x.clone().requires_grad_(True) for x in make_decoder(3, 4, 2, dt).tensors()]
    coords = make_coords(1, 7, dt)

    def f(planes, *w):
        return decode_triplane(planes, TriplaneDecoder(*w), coords)

    assert torch.autograd.gradcheck(f, (planes, *w), eps=1e-6, atol=1e-7)
