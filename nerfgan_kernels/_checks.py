"""Python-side argument checks: ValueError naming the argument and what was expected."""

from __future__ import annotations

import torch

# Features (planes, colours, values) per device; geometry (coords, depths) is never half.
CPU_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
CUDA_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
GEOMETRY_DTYPES = (torch.float32, torch.float64)


def check_tensor(t, name: str, shape: str, dim: int | None = None, sizes: dict | None = None):
    """``t`` is a tensor of rank ``dim`` whose dims listed in ``sizes`` ({dim: size}) match."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {shape}, got {type(t).__name__}")
    if dim is not None and t.dim() != dim:
        raise ValueError(f"{name} must have shape {shape} ({dim} dimensions), got {tuple(t.shape)}")
    for d, size in (sizes or {}).items():
        if t.shape[d] != size:
            raise ValueError(
                f"{name} must have shape {shape} with size {size} in dimension {d}, got "
                f"{tuple(t.shape)}"
            )


def check_float(t: torch.Tensor, name: str) -> None:
    allowed = CUDA_DTYPES if t.device.type == "cuda" else CPU_DTYPES
    if t.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise ValueError(f"{name} must have dtype {names} on {t.device.type}, got {t.dtype}")


def geometry_dtype(features: torch.dtype) -> torch.dtype:
    """The mixed-dtype contract: coords / depths are float64 with float64 features, else float32."""
    return torch.float64 if features == torch.float64 else torch.float32


def check_geometry(t: torch.Tensor, name: str, features: torch.Tensor, features_name: str) -> None:
    """``t`` (geometry) is on the features' device, in ``geometry_dtype(features.dtype)``."""
    if t.device != features.device:
        raise ValueError(f"{name} and {features_name} must be on the same device, got {t.device} "
                         f"and {features.device}")
    want = geometry_dtype(features.dtype)
    if t.dtype != want:
        raise ValueError(f"{name} must have dtype {want} for {features.dtype} {features_name} "
                         f"(geometry stays float32, or float64 with float64 {features_name}), "
                         f"got {t.dtype}")


def check_same(a: torch.Tensor, name_a: str, b: torch.Tensor, name_b: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b} must be on the same device, got {a.device} and {b.device}")
    if a.dtype != b.dtype:
        raise ValueError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")


def broadcast_batch(a: int, name_a: str, b: int, name_b: str) -> int:
    """Batch sizes must be equal or one of them 1; returns the broadcast size."""
    if a != b and a != 1 and b != 1:
        raise ValueError(
            f"batch sizes of {name_a} ({a}) and {name_b} ({b}) must be equal or one of them 1"
        )
    return b if a == 1 else a
