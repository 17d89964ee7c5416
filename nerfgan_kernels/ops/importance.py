"""EG3D's importance sampling (``sample_pdf``) and the per-ray merge of the coarse and fine sample
lists (``merge_samples``) as kernels."""

from __future__ import annotations

import numbers

import torch

from .. import _checks
from .._ext import kernel_for
from . import _reference


def _check_depth_dtype(t: torch.Tensor, name: str) -> None:
    if t.dtype not in _checks.GEOMETRY_DTYPES:
        raise ValueError(f"{name} must have dtype float32 or float64, got {t.dtype}")


def _validate_sample_pdf(depths_coarse, weights_coarse, n, u, deterministic) -> None:
    _checks.check_tensor(depths_coarse, "depths_coarse", "(N, R, D, 1)", dim=4, sizes={3: 1})
    N, R, D, _ = depths_coarse.shape
    if D < 4:
        raise ValueError("depths_coarse must have shape (N, R, D, 1) with D >= 4 samples per ray, "
                         f"got {tuple(depths_coarse.shape)}")
    _checks.check_tensor(weights_coarse, "weights_coarse", "(N, R, D-1, 1)", dim=4)
    if tuple(weights_coarse.shape) != (N, R, D - 1, 1):
        raise ValueError(f"weights_coarse must have shape (N, R, D-1, 1) = {(N, R, D - 1, 1)}, "
                         f"got {tuple(weights_coarse.shape)}")
    _check_depth_dtype(depths_coarse, "depths_coarse")
    _checks.check_same(depths_coarse, "depths_coarse", weights_coarse, "weights_coarse")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if u is None:
        return
    if deterministic:
        raise ValueError("pass either u or deterministic=True, not both")
    _checks.check_tensor(u, "u", "(N*R, n) or (N, R, n)")
    if tuple(u.shape) not in ((N * R, n), (N, R, n)):
        raise ValueError(f"u must have shape (N*R, n) = {(N * R, n)} or (N, R, n) = {(N, R, n)}, "
                         f"got {tuple(u.shape)}")
    _checks.check_same(depths_coarse, "depths_coarse", u, "u")


def sample_pdf(depths_coarse: torch.Tensor, weights_coarse: torch.Tensor, n: int, *,
               u: torch.Tensor | None = None, generator: torch.Generator | None = None,
               deterministic: bool = False) -> torch.Tensor:
    """Fine sample depths by inverse-CDF sampling of the coarse weights (EG3D's importance sampling).

    Args:
        depths_coarse: (N, R, D, 1) coarse depths, sorted per ray, D >= 4.
        weights_coarse: (N, R, D-1, 1) the coarse ray-march weights (one per interval).
        n: number of fine samples per ray.
        u: optional uniform numbers in [0, 1), (N*R, n) (rows batch-major, then ray, as EG3D
            draws them) or (N, R, n); same dtype and device as depths_coarse.
        generator: torch.Generator for the draw of u when neither u nor deterministic is given.
        deterministic: u = linspace(0, 1, n) for every ray (EG3D's ``det=True``).

    Returns:
        (N, R, n, 1) fine depths, **not sorted** (EG3D's order), detached: this op is forward
        only (EG3D computes it under no_grad), no gradient flows to its inputs.

    Semantics (docs/eg3d.md 4.2): weights smoothed by a max-pool (window 2,
    padding 1) and an avg-pool (window 2), + 0.01; bins are the midpoints of the coarse depths; the
    pdf is the interior D-3 smoothed weights + 1e-5, normalized; CDF with a leading 0; u is placed
    with searchsorted(right=True) and linear interpolation between bins (EG3D's off-by-one kept:
    the last bin is never used). dtypes float32/float64 on CPU and CUDA. Equals
    ``_reference.sample_pdf`` to float rounding (both draw u the same way for a given generator).
    """
    _validate_sample_pdf(depths_coarse, weights_coarse, n, u, deterministic)
    n = int(n)
    ext = kernel_for(depths_coarse.device, "sample_pdf")
    if ext is None:
        return _reference.sample_pdf(depths_coarse, weights_coarse, n, u=u, generator=generator,
                                     deterministic=deterministic)
    u = _reference.importance_u(depths_coarse, n, u=u, generator=generator,
                                deterministic=deterministic)
    return ext.sample_pdf(depths_coarse.detach(), weights_coarse.detach(), u.detach())


def _validate_merge(depths_a, values_a, depths_b, values_b) -> None:
    _checks.check_tensor(depths_a, "depths_a", "(N, R, Sa, 1)", dim=4, sizes={3: 1})
    N, R, Sa, _ = depths_a.shape
    _checks.check_tensor(depths_b, "depths_b", "(N, R, Sb, 1)", dim=4, sizes={3: 1})
    if tuple(depths_b.shape[:2]) != (N, R):
        raise ValueError(f"depths_b must have shape (N, R, Sb, 1) with (N, R) = {(N, R)}, got "
                         f"{tuple(depths_b.shape)}")
    Sb = depths_b.shape[2]
    _check_depth_dtype(depths_a, "depths_a")
    _checks.check_same(depths_a, "depths_a", depths_b, "depths_b")
    for name, values in (("values_a", values_a), ("values_b", values_b)):
        if not isinstance(values, (list, tuple)):
            raise ValueError(f"{name} must be a list or tuple of tensors, got {type(values).__name__}")
    if len(values_a) != len(values_b):
        raise ValueError(f"values_a and values_b must have the same length, got {len(values_a)} "
                         f"and {len(values_b)}")
    for k, (va, vb) in enumerate(zip(values_a, values_b)):
        name_a, name_b = f"values_a[{k}]", f"values_b[{k}]"
        _checks.check_tensor(va, name_a, "(N, R, Sa, C)", dim=4)
        _checks.check_tensor(vb, name_b, "(N, R, Sb, C)", dim=4)
        if tuple(va.shape[:3]) != (N, R, Sa):
            raise ValueError(f"{name_a} must have shape (N, R, Sa, C) with (N, R, Sa) = "
                             f"{(N, R, Sa)}, got {tuple(va.shape)}")
        if tuple(vb.shape) != (N, R, Sb, va.shape[3]):
            raise ValueError(f"{name_b} must have shape (N, R, Sb, C) = {(N, R, Sb, va.shape[3])} "
                             f"(C of {name_a}), got {tuple(vb.shape)}")
        if va.device != depths_a.device:
            raise ValueError(f"{name_a} and depths_a must be on the same device, got {va.device} "
                             f"and {depths_a.device}")
        _checks.check_float(va, name_a)
        _checks.check_same(va, name_a, vb, name_b)


def merge_samples(depths_a: torch.Tensor, values_a, depths_b: torch.Tensor, values_b):
    """Merge a sorted sample list with an unsorted one per ray (EG3D's ``unify_samples``).

    Args:
        depths_a: (N, R, Sa, 1) depths sorted per ray (the coarse samples).
        values_a: list/tuple of tensors (N, R, Sa, C_k) carried with depths_a (e.g. colours,
            densities).
        depths_b: (N, R, Sb, 1) depths in any order (the fine samples from ``sample_pdf``).
        values_b: list/tuple of tensors (N, R, Sb, C_k), the same channel counts as values_a.

    Returns:
        (depths, values): depths (N, R, Sa+Sb, 1) ascending per ray (detached), and the list of
        values (N, R, Sa+Sb, C_k) reordered the same way.

    Per ray the short b list is sorted and merged with a in one linear pass; there is no general
    sort of all samples. Ties: a before b, b's ties in input order (a stable sort of
    cat([a, b]); NaN depths sort last). depths_a must be sorted: it is not checked, and an
    unsorted depths_a gives an unsorted result. Gradients flow to the values (once
    differentiable), not to the depths. dtypes: depths float32/float64; values float32/float64
    on the CPU, also float16/bfloat16 on CUDA. Equals ``_reference.merge_samples`` exactly.
    """
    _validate_merge(depths_a, values_a, depths_b, values_b)
    ext = kernel_for(depths_a.device, "merge_samples")
    if ext is None:
        return _reference.merge_samples(depths_a, values_a, depths_b, values_b)
    depths, index = ext.merge_samples_index(depths_a.detach(), depths_b.detach())
    values = [ext.merge_gather(index, va, vb) for va, vb in zip(values_a, values_b)]
    return depths, values
