"""Access to the compiled extension ``nerfgan_kernels._C`` and its ops
(``torch.ops.nerfgan_kernels``), with a one-time fallback warning."""

from __future__ import annotations

import warnings

import torch

from . import _library

try:
    from . import _C  # type: ignore[attr-defined]  (loading it registers the ops' kernels)

    _IMPORT_ERROR: Exception | None = None
    _OPS = _library.register(_C.library)
except ImportError as exc:  # not built, or built for another torch
    _C = None
    _IMPORT_ERROR = exc
    _OPS = None

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def extension_available() -> bool:
    """True when the compiled extension imported (its CPU kernels are then always present)."""
    return _C is not None


def cuda_available() -> bool:
    """True when the CUDA kernels were compiled into the extension (whether or not a GPU is present)."""
    return _C is not None and bool(_C.with_cuda)


def kernel_for(device: torch.device, op: str):
    """The ops namespace ``torch.ops.nerfgan_kernels`` if its kernels can run ``op`` on ``device``;
    None (after one warning) when the caller must fall back to the PyTorch reference."""
    if _C is None:
        _warn_once(
            "import",
            f"nerfgan_kernels: the compiled extension is not available ({_IMPORT_ERROR}); "
            "falling back to the PyTorch reference implementations (slow). Reinstall with "
            "`pip install -e . --no-build-isolation`.",
        )
        return None
    if device.type == "cuda" and not _C.with_cuda:
        _warn_once(
            "cuda",
            f"nerfgan_kernels: {op} got CUDA tensors but the extension was built without CUDA "
            "kernels; falling back to the PyTorch reference.",
        )
        return None
    if device.type not in ("cpu", "cuda"):
        _warn_once(device.type, f"nerfgan_kernels: no kernels for device {device}; using the reference.")
        return None
    return _OPS
