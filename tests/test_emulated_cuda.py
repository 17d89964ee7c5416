"""Every CUDA kernel of csrc/ run on the CPU through the emulated launch (tests/emulated/).

The emulated module is the whole extension with its .cu sources compiled as host C++: CPU tensors
take the CUDA code paths, so these tests run the CUDA kernels themselves (indexing, grid-stride
loops, atomics, launch configuration) against the CPU kernels and the PyTorch reference, forward
and backward, on machines without a GPU. ``python -m pytest -k emulated`` selects them.
"""

from __future__ import annotations

import glob
import importlib
import os
import re
import subprocess
import sys

import pytest
import torch

import nerfgan_kernels
from nerfgan_kernels import _ext
from nerfgan_kernels.ops import _reference
from emulated import build as emulated_build
from helpers import rel_err
from test_composite import random_rays, upstream_for
from test_importance import coarse_inputs, merge_inputs, random_u
from test_triplane_sample import SHAPES as TRIPLANE_SHAPES
from test_triplane_sample import random_inputs as triplane_inputs

# (nerfgan_kernels.ops re-exports the functions under the modules' names: import the modules.)
triplane_mod, composite_mod, importance_mod = (
    importlib.import_module(f"nerfgan_kernels.ops.{name}")
    for name in ("triplane", "composite", "importance"))
TOL = 1e-5
EXACT = dict(t_min=0.0, alpha_min=0.0)
# Grid caps: 0 = the launchers' own grids; 1 and 3 blocks make every grid-stride loop repeat.
GRID_CAPS = [0, 1, 3]


pytestmark = pytest.mark.usefixtures("default_emulation")


def route_to(emu, monkeypatch):
    """From now on in this test, the public ops run the emulated CUDA kernels for CPU tensors."""
    for mod in (triplane_mod, composite_mod, importance_mod):
        monkeypatch.setattr(mod, "kernel_for", lambda device, op: emu.ops)


@pytest.fixture
def on_emulated(monkeypatch, emu):
    route_to(emu, monkeypatch)
    return emu


def with_grads(fn, inputs, upstream):
    inputs = [x.detach().requires_grad_(True) for x in inputs]
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    pairs = [(o, u) for o, u in zip(outs, upstream) if u is not None]
    grads = torch.autograd.grad([o for o, _ in pairs], inputs, [u for _, u in pairs],
                                allow_unused=True)
    return [o.detach() for o in outs], grads


def assert_close(got, expected, tol):
    for g, e in zip(got, expected):
        assert (g is None) == (e is None)
        if g is not None:
            assert g.dtype == e.dtype and g.shape == e.shape
            assert rel_err(g, e) <= tol, rel_err(g, e)


# ---- triplane_sample: forward_kernel, backward_kernel


def triplane_case(shape, reduce, box_warp=1.3, dtype=torch.float32):
    planes, coords = triplane_inputs(*shape, dtype=dtype, box_warp=box_warp, spread=1.4)
    fn = lambda p, c: nerfgan_kernels.triplane_sample(p, c, box_warp, reduce)  # noqa: E731
    out = _reference.triplane_sample(planes, coords, box_warp, reduce)
    upstream = [torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=dtype)]
    return fn, [planes, coords], upstream


@pytest.mark.parametrize("shape", TRIPLANE_SHAPES)
@pytest.mark.parametrize("reduce", ["none", "mean", "sum"])
@pytest.mark.parametrize("max_blocks", GRID_CAPS)
def test_emulated_triplane_matches_cpu_kernel_and_reference(emu, monkeypatch, shape, reduce,
                                                            max_blocks):
    emu.emulation_config(seed=shape[-1], max_blocks=max_blocks)
    fn, inputs, upstream = triplane_case(shape, reduce)
    cpu_out, cpu_grads = with_grads(fn, inputs, upstream)
    ref_out, ref_grads = with_grads(
        lambda p, c: _reference.triplane_sample(p, c, 1.3, reduce), inputs, upstream)
    route_to(emu, monkeypatch)
    out, grads = with_grads(fn, inputs, upstream)
    assert_close(out, cpu_out, TOL)
    assert_close(grads, cpu_grads, TOL)
    assert_close(out, ref_out, TOL)
    assert_close(grads, ref_grads, 1e-4)


def test_emulated_triplane_gradcheck_float64(on_emulated):
    planes, coords = triplane_inputs(2, 1, 3, 4, 5, 7, dtype=torch.float64, spread=1.3)
    fn = lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, "mean")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (planes.requires_grad_(), coords.requires_grad_()))


def test_emulated_triplane_one_input_needs_grad_and_non_contiguous(on_emulated):
    planes, coords = triplane_inputs(1, 2, 5, 6, 7, 40)
    planes_nc = planes.transpose(3, 4).contiguous().transpose(3, 4)  # same values, other strides
    coords_nc = torch.cat([coords, coords], 2)[..., ::2]
    assert not planes_nc.is_contiguous() and not coords_nc.is_contiguous()
    up = torch.randn(2, 40, 5)
    p = planes_nc.detach().requires_grad_(True)
    out = nerfgan_kernels.triplane_sample(p, coords_nc, 1.0, "sum")
    (gp,) = torch.autograd.grad(out, p, up)
    ref_p = planes.detach().requires_grad_(True)
    ref = _reference.triplane_sample(ref_p, coords_nc.contiguous(), 1.0, "sum")
    (ref_gp,) = torch.autograd.grad(ref, ref_p, up)
    assert rel_err(out.detach(), ref.detach()) <= TOL and rel_err(gp, ref_gp) <= 1e-4


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)])
def test_emulated_triplane_half_planes_float32_coords(emu, dtype, tol):
    """The mixed-dtype contract: half planes, float32 coords; against float32 inputs."""
    planes, coords = triplane_inputs(2, 2, 9, 8, 6, 100)
    up = torch.randn(2, 100, 9)
    ref_out, ref_grads = with_grads(
        lambda p, c: _reference.triplane_sample(p, c, 1.0, "mean"), [planes, coords], [up])
    out, grads = with_grads(lambda p, c: emu.ops.triplane_sample(p, c, 1.0, "mean"),
                            [planes.to(dtype), coords], [up.to(dtype)])
    assert out[0].dtype == dtype and grads[0].dtype == dtype and grads[1].dtype == torch.float32
    for got, want in zip([out[0], *grads], [ref_out[0], *ref_grads]):
        assert rel_err(got.float(), want) <= tol


@pytest.mark.parametrize("Np, Nc, M, C", [(1, 3, 0, 4), (0, 1, 5, 4), (2, 2, 6, 0)])
def test_emulated_triplane_empty_sizes(on_emulated, Np, Nc, M, C):
    planes = torch.randn(Np, 3, C, 4, 5)
    coords = torch.rand(Nc, M, 3) - 0.5
    out, grads = with_grads(lambda p, c: nerfgan_kernels.triplane_sample(p, c, 1.0, "mean"),
                            [planes, coords], [torch.ones(max(Np, Nc) if Np and Nc else 0, M, C)])
    assert out[0].shape == (max(Np, Nc) if Np and Nc else 0, M, C)
    assert grads[0].shape == planes.shape and grads[1].shape == coords.shape


# ---- composite: forward_kernel, backward_kernel

# (N, R, S, C); 2 x 300 rays span 5 blocks of 128 threads, so capped grids repeat their loops.
COMPOSITE_SHAPES = [(2, 40, 96, 32), (1, 33, 13, 3), (3, 5, 2, 7), (2, 9, 1, 4), (1, 17, 13, 33),
                    (2, 300, 6, 5)]


def composite_upstream(shape, dtype=torch.float32):
    rgb_up, depth_up, weights_up = upstream_for(*shape, dtype=dtype)
    return [rgb_up, depth_up, weights_up]


@pytest.mark.parametrize("shape", COMPOSITE_SHAPES)
@pytest.mark.parametrize("masking", [EXACT, dict(t_min=1e-2, alpha_min=1e-3)])
@pytest.mark.parametrize("white_back", [False, True])
@pytest.mark.parametrize("max_blocks", GRID_CAPS)
def test_emulated_composite_matches_cpu_kernel_and_reference(emu, monkeypatch, shape, masking,
                                                             white_back, max_blocks):
    emu.emulation_config(seed=shape[1], max_blocks=max_blocks)
    colors, densities, depths = random_rays(*shape, density_shift=1.0)
    up = composite_upstream(shape)
    kw = dict(white_back=white_back, **masking)
    fn = lambda c, s: nerfgan_kernels.composite(c, s, depths, **kw)  # noqa: E731
    cpu_out, cpu_grads = with_grads(fn, [colors, densities], up)
    ref_out, ref_grads = with_grads(lambda c, s: _reference.composite(c, s, depths, **kw),
                                    [colors, densities], up)
    route_to(emu, monkeypatch)
    out, grads = with_grads(fn, [colors, densities], up)
    assert_close(out, cpu_out, TOL)
    assert_close(grads, cpu_grads, TOL)
    assert_close(out, ref_out, TOL)
    assert_close(grads, ref_grads, 1e-4)


def test_emulated_composite_gradcheck_float64_and_stats(on_emulated):
    colors, densities, depths = random_rays(1, 4, 9, 3, dtype=torch.float64, density_shift=2.0)
    for masking in (EXACT, dict(t_min=0.2, alpha_min=1e-2)):
        fn = lambda c, s: nerfgan_kernels.composite(c, s, depths, white_back=True, **masking)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (colors.clone().requires_grad_(),
                                             densities.clone().requires_grad_()))
    kept = nerfgan_kernels.composite(colors, densities, depths, t_min=0.2, alpha_min=1e-2,
                                     return_stats=True)[3]
    ref_kept = (_reference.composite(colors, densities, depths, t_min=0.2,
                                     alpha_min=1e-2)[2][..., 0] > 0).sum(-1)
    assert torch.equal(kept, ref_kept) and (kept < 8).any()


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)])
def test_emulated_composite_half_features_float32_depths(emu, dtype, tol):
    """The mixed-dtype contract: half colours and densities, float32 depths; against float32."""
    colors, densities, depths = random_rays(2, 50, 48, 5)
    upstream = composite_upstream((2, 50, 48, 5))
    ref_out, ref_grads = with_grads(lambda c, s: _reference.composite(c, s, depths, **EXACT),
                                    [colors, densities], upstream)
    rng = torch.stack([depths.min(), depths.max()])
    out, grads = with_grads(
        lambda c, s: emu.ops.composite(c, s, depths, rng, False, 0.0, 0.0)[:3],
        [colors.to(dtype), densities.to(dtype)], [upstream[0].to(dtype), *upstream[1:]])
    assert out[0].dtype == dtype and out[1].dtype == out[2].dtype == torch.float32
    assert grads[0].dtype == grads[1].dtype == dtype
    for got, want in zip([*out, *grads], [*ref_out, *ref_grads]):
        assert rel_err(got.float(), want) <= tol


def test_emulated_composite_empty_rays(on_emulated):
    for shape in [(2, 0, 5, 3), (0, 4, 5, 3)]:
        colors, densities, depths = random_rays(*shape)
        out, grads = with_grads(
            lambda c, s: nerfgan_kernels.composite(c, s, depths, depth_range=(2.0, 3.0)),
            [colors, densities], composite_upstream(shape))
        assert out[0].shape == (*shape[:2], 3) and grads[0].shape == colors.shape


# ---- sample_pdf, merge_samples: cdf, inverse_cdf, merge_index, gather_forward, gather_backward


# (N, R, D, n); 2 x 500 rays span 4 blocks of 256 threads even in the one-thread-per-ray kernel.
@pytest.mark.parametrize("shape", [(1, 1, 4, 5), (2, 33, 48, 48), (3, 5, 13, 64), (2, 3, 30, 31),
                                   (2, 500, 6, 3)])
@pytest.mark.parametrize("u_layout", ["shared", "rows", "deterministic"])
@pytest.mark.parametrize("max_blocks", GRID_CAPS)
def test_emulated_sample_pdf_matches_cpu_kernel_and_reference(emu, shape, u_layout, max_blocks):
    emu.emulation_config(seed=shape[1], max_blocks=max_blocks)
    N, R, D, n = shape
    for dtype in (torch.float32, torch.float64):
        depths, weights = coarse_inputs(N, R, D, dtype=dtype)
        u = {"shared": random_u(1, 1, n, dtype=dtype)[0],  # (n,): one row for every ray
             "rows": random_u(N, R, n, dtype=dtype),
             "deterministic": torch.linspace(0, 1, n, dtype=dtype)}[u_layout]
        got = emu.ops.sample_pdf(depths, weights, u)
        assert torch.equal(got, torch.ops.nerfgan_kernels.sample_pdf(depths, weights, u))
        ref = _reference.sample_pdf(depths, weights, n, u=u.expand(N * R, n))
        assert rel_err(got, ref) <= TOL


@pytest.mark.parametrize("shape", [(2, 5, 48, 48), (1, 1, 1, 1), (3, 4, 0, 5), (3, 4, 5, 0),
                                   (2, 3, 7, 64), (1, 0, 4, 4), (0, 2, 3, 3), (2, 500, 3, 2)])
@pytest.mark.parametrize("max_blocks", GRID_CAPS)
def test_emulated_merge_matches_cpu_kernel_and_reference(emu, monkeypatch, shape, max_blocks):
    emu.emulation_config(seed=sum(shape), max_blocks=max_blocks)
    depths_a, values_a, depths_b, values_b = merge_inputs(*shape)
    g = torch.Generator().manual_seed(5)
    N, R, Sa, Sb = shape
    upstream = [torch.randn(N, R, Sa + Sb, v.shape[-1], generator=g) for v in values_a]

    def run(fn):
        va = [v.detach().requires_grad_(True) for v in values_a]
        vb = [v.detach().requires_grad_(True) for v in values_b]
        depths, values = fn(depths_a, va, depths_b, vb)
        grads = torch.autograd.grad(values, va + vb, upstream, allow_unused=True)
        return depths, values, grads

    cpu = run(nerfgan_kernels.merge_samples)
    ref = run(_reference.merge_samples)
    route_to(emu, monkeypatch)
    got = run(nerfgan_kernels.merge_samples)
    for part in range(3):
        for x, y, z in zip(got[part] if part else [got[0]], cpu[part] if part else [cpu[0]],
                           ref[part] if part else [ref[0]]):
            assert torch.equal(x, y) and torch.equal(x, z)


def test_emulated_merge_one_side_grad_half_values_and_bad_index(emu):
    depths_a, values_a, depths_b, values_b = merge_inputs(2, 3, 6, 5)
    depths, index = emu.ops.merge_samples_index(depths_a, depths_b)
    assert torch.equal(index, torch.ops.nerfgan_kernels.merge_samples_index(depths_a, depths_b)[1])
    for dtype in (torch.float16, torch.bfloat16):
        va, vb = values_a[0].to(dtype), values_b[0].to(dtype)
        assert torch.equal(emu.ops.merge_gather(index, va, vb),
                           torch.ops.nerfgan_kernels.merge_gather(index, va.float(), vb.float()).to(dtype))
    grad = torch.randn(2, 3, 11, 32)
    only_b = emu.ops.merge_gather_backward(grad, index, 6, 5, False, True)
    both = torch.ops.nerfgan_kernels.merge_gather_backward(grad, index, 6, 5, True, True)
    assert only_b[0].numel() == 0 and torch.equal(only_b[1], both[1])
    # A hand-made index with out-of-range slots (C++ consumers) reads 0 and writes nothing.
    bad = torch.tensor([[[2, -1, 7]]])
    a, b = torch.randn(1, 1, 2, 3), torch.randn(1, 1, 1, 3)
    assert torch.equal(emu.ops.merge_gather(bad, a, b), torch.ops.nerfgan_kernels.merge_gather(bad, a, b))
    got = emu.ops.merge_gather_backward(torch.ones(1, 1, 3, 3), bad, 2, 1, True, True)
    want = torch.ops.nerfgan_kernels.merge_gather_backward(torch.ones(1, 1, 3, 3), bad, 2, 1, True, True)
    assert all(torch.equal(x, y) for x, y in zip(got, want))


# ---- the renderer end to end on the emulated kernels


def test_emulated_importance_render_matches_eg3d_port(on_emulated):
    from nerfgan_kernels.render import ImportanceRenderer
    from test_renderer import OPTIONS, eg3d_render, make_scene

    planes, decoder, origins, directions = make_scene()
    with torch.no_grad():
        expected = eg3d_render(planes, decoder, origins, directions, dict(OPTIONS), None, None)
        out = ImportanceRenderer(ops="kernels")(planes, decoder, origins, directions, dict(OPTIONS))
    for o, e in zip(out, expected):
        assert rel_err(o, e) <= TOL


# ---- the emulator itself: barriers, shared memory, warps, errors

SYNC_NONE, SYNC_BLOCK, SYNC_WARP = 0, 1, 2


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
@pytest.mark.parametrize("block, n", [(32, 100), (256, 256), (48, 1000), (1024, 1500), (7, 7)])
def test_barrier_makes_shared_memory_exchange_exact(emu, order, block, n):
    for seed in range(3):
        emu.emulation_config(seed=seed, order=order)
        x = torch.randn(n)
        got = emu.test_block_reverse(x, block, SYNC_BLOCK)
        padded = torch.cat([x, torch.zeros(-n % block)]).view(-1, block).flip(1).reshape(-1)[:n]
        assert torch.equal(got, padded)


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_planted_missing_syncthreads_fails_every_run(emu, order):
    # The same kernel without its barrier, or with only a __syncwarp: in every thread order and
    # seed some thread reads a slot before it is written (shared memory starts as NaN). A
    # __syncwarp is enough for a block of one warp, and only then.
    for seed in range(8):
        emu.emulation_config(seed=seed, order=order)
        for block, n in [(32, 64), (256, 512), (48, 100), (64, 64)]:
            x = torch.randn(n)
            expected = emu.test_block_reverse(x, block, SYNC_BLOCK)
            assert not torch.equal(emu.test_block_reverse(x, block, SYNC_NONE), expected)
            warp_only = emu.test_block_reverse(x, block, SYNC_WARP)
            assert torch.equal(warp_only, expected) == (block <= 32), (order, seed, block)


@pytest.mark.parametrize("block, n", [(32, 32), (40, 45), (64, 100), (33, 33), (1024, 1000), (5, 3)])
def test_warp_primitives_with_partial_masks(emu, block, n):
    x = torch.randn(n)
    x[::3] = -x[::3].abs()
    sums, scan, ballots, broadcast = emu.test_warp_ops(x, block)
    warps_per_block = (block + 31) // 32
    for w in range(sums.numel()):
        b, k = divmod(w, warps_per_block)
        lo = b * block + 32 * k
        hi = min(b * block + min(32 * (k + 1), block), n)
        if lo >= hi:
            assert torch.isnan(sums[w]) and ballots[w] == -1  # a warp with no thread in range
            continue
        seg = x[lo:hi]
        assert torch.allclose(sums[w], seg.sum(), atol=1e-5)
        assert torch.allclose(scan[lo:hi], torch.cumsum(seg, 0), atol=1e-5)
        assert int(ballots[w]) == sum(1 << i for i, v in enumerate(seg.tolist()) if v > 0)
        for i in range(lo, hi):
            assert broadcast[i] == x[lo + ((i - lo) // 8) * 8]


def test_emulator_reports_divergent_barriers_and_deadlocked_warps(emu):
    with pytest.raises(RuntimeError, match=r"__syncthreads\(\) reached by 32 of 64 threads"):
        emu.test_divergent_barrier()
    with pytest.raises(RuntimeError, match="names lane 0, which waits in __syncthreads"):
        emu.test_warp_waits_for_barrier()


def test_exited_and_absent_lanes_do_not_vote(emu):
    # Block of 48: warp 0 has lanes 0..31, warp 1 lanes 0..15; lanes 12..15 of every 16 exit.
    got = emu.test_full_mask_in_partial_warp()
    t = torch.arange(48)
    expected = torch.where(t < 32, 0x0FFF0FFF, 0x0FFF)
    expected[t % 16 >= 12] = 0
    assert torch.equal(got, expected)


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_2d_blocks_dynamic_shared_memory_xor_any_all(emu, order):
    emu.emulation_config(seed=4, order=order)
    x = torch.randn(256) * 2
    got = emu.test_block2d(x)
    blocks = x.view(-1, 64)
    assert torch.equal(got[0], blocks.flip(1).reshape(-1))
    lane = torch.arange(256) % 32
    partner = torch.where(lane % 16 >= 8, torch.arange(256) - 8, torch.arange(256))
    assert torch.equal(got[1], x[partner])
    warps = x.view(-1, 32)
    assert torch.equal(got[2], (warps > 1).any(1).float().repeat_interleave(32))
    assert torch.equal(got[3], (warps > -3).all(1).float().repeat_interleave(32))


def test_emulator_fills_shared_memory_and_checks_launches(emu):
    assert torch.isnan(emu.test_uninitialized_shared(64)).all()
    assert torch.equal(emu.test_shared_write(0), torch.ones(32))
    emu.test_launch(2, 1024, 48 * 1024)
    for grid, block, shared, why in [(0, 32, 0, "empty grid"), (1, 0, 0, "empty block"),
                                     (1, 1025, 0, "more than 1024 threads per block"),
                                     (1, 32, 48 * 1024 + 1, "more than 48 KiB")]:
        with pytest.raises(RuntimeError, match=f"ngk_emu_tests::noop_kernel: invalid configuration: {why}"):
            emu.test_launch(grid, block, shared)
    with pytest.raises(ValueError, match="order must be"):
        emu.emulation_config(order="sideways")


@pytest.mark.skipif(os.environ.get(emulated_build.SANITIZE_ENV) != "1",
                    reason="runs in the sanitized job (python -m emulated.build --sanitized-tests)")
def test_address_sanitizer_reports_a_shared_memory_overflow():
    # In the sanitized build a write one past a __shared__ array is an ASan report, not silence.
    code = ("import sys; sys.path.insert(0, 'tests'); from emulated import build; "
            "build.build(sanitize=True).test_shared_write(32)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ), cwd=emulated_build.ROOT, timeout=300)
    assert proc.returncode != 0
    assert "AddressSanitizer" in proc.stderr and "use-after-poison" in proc.stderr, proc.stderr[-2000:]


# ---- every __global__ kernel is launched by the emulated tests


def global_kernels(csrc: str = emulated_build.CSRC) -> set[str]:
    """Qualified names (namespace::kernel) of the __global__ functions in csrc/."""
    names = set()
    for path in glob.glob(os.path.join(csrc, "**", "*.cu*"), recursive=True):
        text = open(path).read()
        for m in re.finditer(r"__global__\s+void\s+(\w+)", text):
            spaces = re.findall(r"namespace\s+(\w+)\s*\{", text[:m.start()])
            names.add("::".join(spaces + [m.group(1)]))
    return names


def exercise_every_op(emu):
    """One forward + backward of every op through the emulated kernels."""
    planes, coords = triplane_inputs(2, 2, 5, 6, 7, 30)
    for reduce in ("none", "mean"):
        out = emu.ops.triplane_sample(planes, coords, 1.0, reduce)
        emu.ops.triplane_sample_backward(torch.ones_like(out), planes, coords, 1.0, reduce, True, True)
    colors, densities, depths = random_rays(1, 6, 8, 3)
    rng = torch.stack([depths.min(), depths.max()])
    rgb, depth, weights, stats = emu.ops.composite(colors, densities, depths, rng, False, 0.0, 0.0)
    emu.ops.composite_backward(torch.ones_like(rgb), torch.ones_like(depth), torch.ones_like(weights),
                           colors, densities, depths, rng, stats, False, 0.0, 0.0)
    d, w = coarse_inputs(1, 3, 8)
    fine = emu.ops.sample_pdf(d, w, random_u(1, 3, 5))
    merged, index = emu.ops.merge_samples_index(d, fine)
    values = emu.ops.merge_gather(index, d, fine)
    emu.ops.merge_gather_backward(torch.ones_like(values), index, 8, 5, True, True)
    from test_render_triplane import make_decoder, make_planes, make_rays
    planes, dec = make_planes(1, 4, 5, 6, torch.float32), make_decoder(4, 8, 3, torch.float32)
    o, d, t = make_rays(1, 6, 1, 5, torch.float32)
    args = (*dec.tensors(), o, d, t, torch.stack([t.min(), t.max()]))
    out = emu.ops.render_triplane(planes, *args, 1.0, False, 0.0, 0.0)
    emu.ops.render_triplane_backward(*(torch.ones_like(x) for x in out[:4]), planes, *args, out[4],
                                     1.0, False, 0.0, 0.0)


def test_every_global_kernel_runs_emulated(emu):
    kernels = global_kernels()
    assert len(kernels) >= 9, kernels
    exercise_every_op(emu)
    launched = set(emu.emulation_launched())
    missing = kernels - launched
    assert not missing, f"__global__ kernels never launched by an emulated test: {sorted(missing)}"
