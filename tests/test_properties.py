"""Property-based tests (hypothesis): every op against its PyTorch reference, forward and
backward, on generated shapes, broadcasts, dtypes and values (points far outside the box, huge
and negative densities, tied depths, zero weights), and its argument errors.

The example count is bounded (``MAX_EXAMPLES``) so the suite stays fast in CI; raise it locally
with ``NGK_HYPOTHESIS_EXAMPLES=500 python -m pytest tests/test_properties.py``.
"""

from __future__ import annotations

import os

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis", reason="needs hypothesis (requirements.txt)")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import nerfgan_kernels  # noqa: E402
from nerfgan_kernels.ops import _reference  # noqa: E402
from helpers import rel_err  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("NGK_HYPOTHESIS_EXAMPLES", "30"))
bounded = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True)
DTYPES = st.sampled_from([torch.float32, torch.float64])


def tol(dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 1e-9


@st.composite
def batches(draw):
    """(Na, Nb): equal, or one of them 1 (the ops' broadcast rule)."""
    n = draw(st.integers(1, 3))
    return draw(st.sampled_from([(n, n), (1, n), (n, 1)]))


def tensor(draw, shape, dtype, low, high):
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64).mul(high - low).add(low).to(dtype)


def grads(fn, inputs, upstream):
    xs = [x.detach().clone().requires_grad_(True) for x in inputs]
    outs = fn(*xs)
    outs = outs if isinstance(outs, (tuple, list)) else (outs,)
    loss = sum((o * u).sum() for o, u in zip(outs, upstream))
    return [o.detach() for o in outs], torch.autograd.grad(loss, xs)


@bounded
@given(data=st.data(), dtype=DTYPES, reduce=st.sampled_from(["none", "mean", "sum"]),
       box_warp=st.floats(0.3, 3.0))
def test_triplane_sample_matches_reference(data, dtype, reduce, box_warp):
    Np, Nc = data.draw(batches())
    C, H, W = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    M = data.draw(st.integers(0, 25))
    reach = data.draw(st.sampled_from([0.5, 1.5, 100.0]))  # inside, around, far outside the box
    planes = tensor(data.draw, (Np, 3, C, H, W), dtype, -2, 2)
    coords = tensor(data.draw, (Nc, M, 3), dtype, -reach * box_warp, reach * box_warp)
    fn = lambda p, c: nerfgan_kernels.triplane_sample(p, c, box_warp, reduce)  # noqa: E731
    ref_fn = lambda p, c: _reference.triplane_sample(p, c, box_warp, reduce)  # noqa: E731
    ref_out = ref_fn(planes, coords)
    up = [tensor(data.draw, ref_out.shape, dtype, -1, 1)]
    out, g = grads(fn, [planes, coords], up)
    ref, ref_g = grads(ref_fn, [planes, coords], up)
    assert out[0].shape == ref[0].shape and out[0].dtype == dtype
    assert rel_err(out[0], ref[0]) <= tol(dtype)
    assert rel_err(g[0], ref_g[0]) <= tol(dtype)
    # The coordinate gradient is discontinuous on texel edges, which float32 rounding can put
    # on either side: compare it in float64 only.
    if dtype == torch.float64:
        assert rel_err(g[1], ref_g[1]) <= tol(dtype)


@st.composite
def sorted_depths(draw, shape, dtype, ties: bool):
    depths = torch.sort(tensor(draw, shape, dtype, 2.0, 3.5), dim=2).values
    if ties and shape[2] > 2:
        depths[:, :, 1] = depths[:, :, 0]  # a zero-length interval
    return depths


@bounded
@given(data=st.data(), dtype=DTYPES, white_back=st.booleans(), ties=st.booleans(),
       masking=st.sampled_from([(0.0, 0.0), (1e-3, 1e-5), (0.3, 0.05)]),
       density_reach=st.sampled_from([3.0, 1e3]))
def test_composite_matches_reference(data, dtype, white_back, ties, masking, density_reach):
    N, R = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 9))
    S, C = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 5))
    colors = tensor(data.draw, (N, R, S, C), dtype, -0.001, 1.001)
    densities = tensor(data.draw, (N, R, S, 1), dtype, -density_reach, density_reach)
    depths = data.draw(sorted_depths((N, R, S, 1), dtype, ties))
    kw = dict(white_back=white_back, t_min=masking[0], alpha_min=masking[1], depth_range=(2.0, 3.5))
    up = [tensor(data.draw, s, dtype, -1, 1) for s in [(N, R, C), (N, R, 1), (N, R, max(S - 1, 0), 1)]]
    out, g = grads(lambda c, s: nerfgan_kernels.composite(c, s, depths, **kw), [colors, densities], up)
    ref, ref_g = grads(lambda c, s: _reference.composite(c, s, depths, **kw), [colors, densities], up)
    for a, b in zip(out + list(g), ref + list(ref_g)):
        assert a.shape == b.shape and torch.isfinite(a).all()
        assert rel_err(a, b) <= tol(dtype)


@bounded
@given(data=st.data(), dtype=DTYPES, zero_weights=st.booleans(),
       layout=st.sampled_from(["rows", "shared", "deterministic"]))
def test_sample_pdf_matches_reference(data, dtype, zero_weights, layout):
    N, R = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 6))
    D, n = data.draw(st.integers(4, 14)), data.draw(st.integers(1, 12))
    depths = data.draw(sorted_depths((N, R, D, 1), dtype, False))
    weights = tensor(data.draw, (N, R, D - 1, 1), dtype, 0, 1) ** 4
    if zero_weights:
        weights.zero_()
    if layout == "deterministic":
        kw = dict(deterministic=True)
    else:
        u = tensor(data.draw, (N * R, n), dtype, 0, 1)
        if layout == "shared" and N * R > 0:
            u = u[:1].expand(N * R, n).contiguous()
        kw = dict(u=u)
    out = nerfgan_kernels.sample_pdf(depths, weights, n, **kw)
    ref = _reference.sample_pdf(depths, weights, n, **kw)
    assert out.shape == (N, R, n, 1) and rel_err(out, ref) <= tol(dtype)


@bounded
@given(data=st.data(), dtype=DTYPES)
def test_merge_samples_matches_reference(data, dtype):
    N, R = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 5))
    Sa, Sb = data.draw(st.integers(0, 9)), data.draw(st.integers(0, 9))
    depths_a = data.draw(sorted_depths((N, R, Sa, 1), dtype, True))
    # b drawn from a's values and fresh ones: ties against a and within b.
    pool = torch.cat([depths_a, tensor(data.draw, (N, R, 3, 1), dtype, 2.0, 3.5)], 2)
    pick = tensor(data.draw, (N, R, Sb, 1), torch.float64, 0, pool.shape[2] - 1e-9).long()
    depths_b = torch.gather(pool, 2, pick)
    C = data.draw(st.integers(1, 4))
    va, vb = tensor(data.draw, (N, R, Sa, C), dtype, -1, 1), tensor(data.draw, (N, R, Sb, C), dtype, -1, 1)
    up = [tensor(data.draw, (N, R, Sa + Sb, C), dtype, -1, 1)]

    def run(fn):
        return grads(lambda a, b: fn(depths_a, [a], depths_b, [b])[1][0], [va, vb], up)

    (out,), g = run(nerfgan_kernels.merge_samples)
    (ref,), ref_g = run(_reference.merge_samples)
    assert torch.equal(out, ref) and all(torch.equal(x, y) for x, y in zip(g, ref_g))
    d, _ = nerfgan_kernels.merge_samples(depths_a, [va], depths_b, [vb])
    assert torch.equal(d, _reference.merge_samples(depths_a, [va], depths_b, [vb])[0])


@bounded
@given(dim=st.integers(0, 6), last=st.integers(1, 5), dtype=st.sampled_from([torch.int64, torch.float16]))
def test_bad_inputs_raise_value_errors_naming_the_argument(dim, last, dtype):
    good_planes, good_coords = torch.randn(1, 3, 4, 5, 5), torch.rand(1, 7, 3)
    bad = torch.zeros((2,) * max(dim - 1, 0) + (last,)) if dim else torch.tensor(1.0)
    if bad.dim() != 3 or bad.shape[-1] != 3:
        with pytest.raises(ValueError, match="coords"):
            nerfgan_kernels.triplane_sample(good_planes, bad)
    with pytest.raises(ValueError, match="planes|coords"):
        nerfgan_kernels.triplane_sample(good_planes.to(dtype), good_coords.to(dtype))
    colors = torch.rand(1, 2, 4, 3)
    if bad.dim() != 4 or bad.shape[-1] != 1:
        with pytest.raises(ValueError, match="densities"):
            nerfgan_kernels.composite(colors, bad, torch.rand(1, 2, 4, 1))
