"""Safe reader for EG3D network pickles (``*.pkl`` snapshots): tensors and constructor kwargs
only, through a restricted unpickler that resolves an allow-list of globals and never executes the
Python source that EG3D's ``persistence`` module embeds (docs/eg3d.md section 13).
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass, field

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list; nothing was executed."""


@dataclass
class PersistentObject:
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` would have rebuilt:
    kept as data (class name, version, the object's ``__dict__``); ``module_src`` is never run."""

    class_name: str
    version: int
    state: dict


class StubObject:
    """Stand-in for a non-persistent class (``training.*``, ``torch.nn.modules.*``) rebuilt by
    NEWOBJ + BUILD: it only records the BUILD state."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}


class EasyDict(dict):
    """``dnnlib.util.EasyDict`` as plain data."""


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError(f"unexpected persistent object metadata: {type(meta).__name__}")
    return PersistentObject(class_name=str(meta.get("class_name")), version=int(meta.get("version", 0)),
                            state=meta.get("state") or {})


def _load_storage_bytes(data: bytes):
    """``torch.storage._load_from_bytes``: a legacy torch.save stream of one storage, read with
    torch's own weights-only loader."""
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy_scalar(dtype, data=None):
    return np.frombuffer(data, dtype=dtype)[0] if data is not None else dtype.type()


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): np.dtype,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}
_STUB_PREFIXES = ("training.", "torch.nn.modules.")
# This package's weightless modules, which ``patch_eg3d_generator`` puts into an EG3D generator:
# a patched generator saved EG3D's way names them, and they are read as data like EG3D's own.
_STUB_CLASSES = {
    ("nerfgan_kernels.render.renderer", "ImportanceRenderer"),
    ("nerfgan_kernels.render.rays", "RaySampler"),
}
_stub_classes: dict[str, type] = {}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        if (module.startswith(_STUB_PREFIXES) and name.isidentifier()) or key in _STUB_CLASSES:
            qualname = f"{module}.{name}"
            if qualname not in _stub_classes:
                _stub_classes[qualname] = type(name, (StubObject,), {"qualname": qualname})
            return _stub_classes[qualname]
        raise UnsafePickleError(
            f"refusing to load global '{module}.{name}': not on the EG3D checkpoint allow-list "
            "(the file may contain code; nothing was executed)")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"unexpected persistent id {pid!r} in an EG3D network pickle")


def load_pickle_data(path_or_file) -> dict:
    """Unpickle an EG3D snapshot with the restricted unpickler. Returns the top-level dict with
    modules as :class:`PersistentObject` / :class:`StubObject` data."""
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
        with open(path_or_file, "rb") as f:
            data = _RestrictedUnpickler(f).load()
    else:
        data = _RestrictedUnpickler(path_or_file).load()
    if not isinstance(data, dict):
        raise pickle.UnpicklingError(f"expected an EG3D snapshot dict, got {type(data).__name__}")
    return data


def _module_state(obj) -> dict:
    if isinstance(obj, PersistentObject):
        return obj.state
    if isinstance(obj, StubObject):
        return obj.state
    raise pickle.UnpicklingError(f"unexpected module object {type(obj).__name__} in the snapshot")


def collect_state_dict(obj, prefix: str = "", out=None) -> "collections.OrderedDict[str, torch.Tensor]":
    """Walk ``_parameters``, ``_buffers`` and ``_modules`` as nn.Module.state_dict() does."""
    out = collections.OrderedDict() if out is None else out
    state = _module_state(obj)
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, t in (state.get("_parameters") or {}).items():
        if t is not None:
            out[prefix + name] = t.detach()
    for name, t in (state.get("_buffers") or {}).items():
        if t is not None and name not in skip:
            out[prefix + name] = t.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            collect_state_dict(child, prefix + name + ".", out)
    return out


def _plain(value):
    """EasyDict / numpy scalars / tuples -> JSON-friendly python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class NetworkRecord:
    """One network of a snapshot: EG3D class name, constructor kwargs, state dict, attributes."""

    class_name: str
    init_kwargs: dict
    state_dict: "collections.OrderedDict[str, torch.Tensor]"
    attributes: dict = field(default_factory=dict)


def read_eg3d_pickle(path_or_file, networks=("G_ema",)) -> dict[str, NetworkRecord]:
    """Read the named networks (``G_ema``; ``G``/``D`` when asked) of an EG3D snapshot safely.

    Raises :class:`UnsafePickleError` for any global outside the allow-list and KeyError naming
    a missing network.
    """
    data = load_pickle_data(path_or_file)
    out = {}
    for name in networks:
        if name not in data:
            raise KeyError(f"network {name!r} not in the snapshot (it has {sorted(data)})")
        obj = data[name]
        if not isinstance(obj, PersistentObject):
            raise pickle.UnpicklingError(f"{name} is not a persistent EG3D module")
        state = obj.state
        attrs = {k: _plain(state[k]) for k in ("neural_rendering_resolution", "rendering_kwargs",
                                               "z_dim", "c_dim", "w_dim", "img_resolution",
                                               "img_channels") if k in state}
        out[name] = NetworkRecord(class_name=obj.class_name,
                                  init_kwargs=_plain(state.get("_init_kwargs") or {}),
                                  state_dict=collect_state_dict(obj), attributes=attrs)
    return out
