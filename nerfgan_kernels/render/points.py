"""Point queries on tri-planes: the decoder's output (``sample_mixed``, EG3D's ``run_model``) or
its raw density (``render_density``) at arbitrary points, chunked by the memory model."""

from __future__ import annotations

import torch

from .. import _checks
from .memory import DEFAULT_MAX_MEMORY_BYTES, decoder_sizes, plan_chunks, point_bytes
from .paths import features, fused_decoder, kernel_layout, op_module, point_ops


def _check_points(planes, coords, name: str = "coords") -> None:
    _checks.check_tensor(planes, "planes", "(N, 3, C, H, W)", dim=5, sizes={1: 3})
    _checks.check_tensor(coords, name, "(N, M, 3)", dim=3, sizes={2: 3})
    _checks.check_same(planes, "planes", coords, name)
    _checks.broadcast_batch(planes.shape[0], "planes", coords.shape[0], name)


def _point_chunks(M: int, N: int, decoder, itemsize: int, max_memory_bytes) -> int:
    return plan_chunks(N, M, point_bytes(*decoder_sizes(decoder), itemsize), max_memory_bytes)


def _query(planes, decoder, coords, directions, box_warp: float, ops: str, max_memory_bytes,
           density_only: bool) -> list:
    """The one chunked point loop: per chunk of points, {'rgb', 'sigma'} (or the sigma tensor
    alone when density_only) through decode_triplane or the decoder of ``ops``."""
    _check_points(planes, coords)
    N, M = max(planes.shape[0], coords.shape[0]), coords.shape[1]
    step = _point_chunks(M, N, decoder, planes.element_size(), max_memory_bytes)
    ops = point_ops(ops, planes, decoder, coords)
    planes = kernel_layout(planes, ops)
    fused = fused_decoder(decoder) if ops == "fused" else None
    kernels = op_module(ops)
    outs = []
    for s in range(0, max(M, 1), step):
        chunk = coords[:, s:s + step]
        if fused is not None:
            rgb, sigma = kernels.decode_triplane(planes, fused, chunk, box_warp)
            outs.append(sigma if density_only else {"rgb": rgb, "sigma": sigma})
            continue
        feats = features(ops, planes, decoder, chunk, box_warp)
        if density_only:
            outs.append(decoder.density(feats) if hasattr(decoder, "density")
                        else decoder(feats, None)["sigma"])
        else:
            outs.append(decoder(feats, None if directions is None else directions[:, s:s + step]))
    return outs


def sample_mixed(planes: torch.Tensor, decoder, coords: torch.Tensor, directions=None,
                 box_warp: float = 1.0, *, ops: str = "fused",
                 max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES) -> dict:
    """Decoder output at points: EG3D's ``run_model`` / ``G.sample_mixed`` on given planes.

    planes (Np, 3, C, H, W), coords (N, M, 3) (Np == N or Np == 1), directions (N, M, 3) or None
    (unused by the OSG decoder). Returns {'rgb': (N, M, O), 'sigma': (N, M, 1) raw density}.
    Points are processed in chunks of at most ``max_memory_bytes`` of intermediates. With
    ``ops="fused"``, an OSG decoder and coords without gradient the points go through
    ``decode_triplane`` (no gathered features kept); otherwise ``ops="kernels"``.
    """
    outs = _query(planes, decoder, coords, directions, box_warp, ops, max_memory_bytes, False)
    return {k: torch.cat([o[k] for o in outs], dim=1) for k in outs[0]}


def render_density(planes: torch.Tensor, decoder, coords: torch.Tensor, box_warp: float = 1.0, *,
                   ops: str = "fused", max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES):
    """Raw density (before the ray marcher's shifted softplus) at points, for the geometric
    regularizers of inversion and EG3D's ``sample_density``.

    planes (Np, 3, C, H, W), coords (N, M, 3) (Np == N or Np == 1) -> sigma (N, M, 1), equal to
    ``decoder(features)['sigma']``. Gradients flow to planes, coords and the decoder. With
    ``ops="fused"``, an OSG decoder and coords without gradient the points go through
    ``decode_triplane``; otherwise through ``ops="kernels"`` (decoders with a ``density`` method
    then skip the colour outputs).
    """
    return torch.cat(_query(planes, decoder, coords, None, box_warp, ops, max_memory_bytes, True),
                     dim=1)
