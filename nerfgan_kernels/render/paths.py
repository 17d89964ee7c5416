"""The renderer's three computation paths (``ops``): "fused" (``render_triplane`` /
``decode_triplane``), "kernels" (the per-op kernels, the decoder in PyTorch) and "reference" (the
pure-PyTorch references), and when "fused" falls back to "kernels"."""

from __future__ import annotations

import torch

OPS = ("fused", "kernels", "reference")


def op_module(ops: str):
    """The module that provides triplane_sample / composite / sample_pdf / merge_samples /
    render_triplane: the package (its kernels) or the pure-PyTorch references. Looked up at call
    time."""
    if ops in ("fused", "kernels"):
        import nerfgan_kernels
        return nerfgan_kernels
    from ..ops import _reference
    return _reference


def check_ops(ops) -> str:
    if ops not in OPS:
        raise ValueError(f"ops must be one of {OPS}, got {ops!r}")
    return ops


def features(ops: str, planes, decoder, coords, box_warp: float) -> torch.Tensor:
    """Tri-plane features at coords, plane-averaged (N, M, C) for decoders that accept that,
    else EG3D's per-plane (N, 3, M, C)."""
    reduce = "mean" if getattr(decoder, "accepts_mean_features", False) else "none"
    return op_module(ops).triplane_sample(planes, coords, box_warp, reduce)


def kernel_layout(planes: torch.Tensor, ops: str) -> torch.Tensor:
    """For the kernels: planes as a (N, 3, C, H, W) view of a contiguous (N, 3, H, W, C) tensor,
    the layout they read, so that per-chunk calls do not each make that copy (differentiable).
    Under autocast, float32 planes are cast to the autocast dtype in the same copy for "kernels"
    (what the op's autocast rule would do on every call); the fused op computes in the planes'
    float32 (its activations never reach memory, so a narrower dtype would save nothing)."""
    if ops == "reference":
        return planes
    device, dtype = planes.device.type, planes.dtype
    if ops == "kernels" and dtype == torch.float32 and torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    cl = planes.permute(0, 1, 3, 4, 2)
    if cl.is_contiguous() and dtype == planes.dtype:
        return planes
    return cl.to(dtype, memory_format=torch.contiguous_format).permute(0, 1, 4, 2, 3)


def fused_decoder(decoder):
    """The decoder as the fused op's ``TriplaneDecoder``, or None when it is not OSG-like."""
    from ..ops.fused import TriplaneDecoder
    try:
        return TriplaneDecoder.from_module(decoder)
    except ValueError:
        return None


def fused_unsupported(planes, decoder, ray_origins=None, ray_directions=None,
                       density_noise: float = 0.0) -> str | None:
    """Why ``ops="fused"`` cannot render this (the renderer then uses "kernels"), or None."""
    from .._ext import cuda_available, extension_available
    if not extension_available():
        return "the compiled extension is not available"
    if planes.device.type not in ("cpu", "cuda") or (planes.device.type == "cuda"
                                                      and not cuda_available()):
        return f"render_triplane has no kernel for {planes.device} tensors here"
    if planes.dtype not in (torch.float32, torch.float64):
        return f"planes are {planes.dtype} (the fused op takes float32 / float64)"
    if ray_origins is not None and ray_origins.dtype != planes.dtype:
        return f"planes are {planes.dtype} but rays {ray_origins.dtype} (the fused op takes one dtype)"
    if fused_decoder(decoder) is None:
        return f"the decoder ({type(decoder).__name__}) is not EG3D's OSG decoder"
    if density_noise > 0:
        return "rendering_options['density_noise'] > 0"
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (ray_origins, ray_directions)):
        return "ray origins / directions require grad (the fused op has no camera gradient)"
    return None


def resolve_ops(ops: str, *args, **kwargs) -> str:
    """``ops``, or "kernels" (with one warning per reason) where "fused" does not cover the call."""
    if ops != "fused":
        return ops
    reason = fused_unsupported(*args, **kwargs)
    if reason is None:
        return ops
    from .._ext import _warn_once
    _warn_once(f"fused:{reason}", f"nerfgan_kernels: ImportanceRenderer(ops='fused') renders with "
                                  f"ops='kernels' because {reason}")
    return "kernels"


def point_ops(ops: str, planes, decoder, coords) -> str:
    """The ops of a point query: "fused" falls back to "kernels" (silently: a point query is
    exact either way) for coords that need a gradient, which decode_triplane does not give."""
    ops = check_ops(ops)
    if ops == "fused" and torch.is_grad_enabled() and coords.requires_grad:
        return "kernels"
    return resolve_ops(ops, planes, decoder)
