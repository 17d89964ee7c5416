"""Generator checkpoints: EG3D network pickles (read safely), and our format: a safetensors state
dict with EG3D key names plus a JSON of the same stem holding the constructor kwargs.

JSON form (the same as the fixtures' ``generator_kwargs``)::

    {"generator_kwargs": {"z_dim": 512, ..., "rendering_kwargs": {...}},
     "neural_rendering_resolution": 128}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .eg3d_pickle import UnsafePickleError, read_eg3d_pickle
from .metadata import GeneratorMetadata
from .triplane import TriPlaneGenerator

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
TRIPLANE_CLASS_NAMES = ("training.triplane.TriPlaneGenerator", "TriPlaneGenerator")

# Sizes a checkpoint config may ask for (far above any EG3D model; a hostile or corrupt config
# must not allocate without bound): name -> (smallest, largest).
SIZE_LIMITS = {"z_dim": (1, 4096), "c_dim": (0, 4096), "w_dim": (1, 4096), "img_resolution": (8, 4096),
               "img_channels": (1, 16), "channel_base": (1, 2 ** 20), "channel_max": (1, 4096),
               "sr_num_fp16_res": (0, 16), "num_fp16_res": (0, 16)}
RENDERING_LIMITS = {"depth_resolution": (1, 4096), "depth_resolution_importance": (0, 4096)}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or built; the message names the file and the problem."""


def check_generator_kwargs(kwargs) -> None:
    """ValueError naming the entry when EG3D constructor kwargs are not a dict, an integer size is
    not an int in ``SIZE_LIMITS``, or the rendering / mapping / SR kwargs are not dicts."""
    if not isinstance(kwargs, dict):
        raise ValueError(f"generator_kwargs must be a dict of EG3D constructor kwargs, got {type(kwargs).__name__}")
    for name in ("z_dim", "c_dim", "w_dim", "img_resolution"):
        if name not in kwargs:
            raise ValueError(f"generator_kwargs needs {name!r}")

    def check_int(where: dict, name: str, limits: tuple[int, int], label: str) -> None:
        if name in where:
            v = where[name]
            if isinstance(v, bool) or not isinstance(v, int) or not limits[0] <= v <= limits[1]:
                raise ValueError(f"{label}[{name!r}] must be an int in [{limits[0]}, {limits[1]}], got {v!r}")

    for name, limits in SIZE_LIMITS.items():
        check_int(kwargs, name, limits, "generator_kwargs")
    for name in ("rendering_kwargs", "mapping_kwargs", "sr_kwargs"):
        if name in kwargs and not isinstance(kwargs[name], dict):
            raise ValueError(f"generator_kwargs[{name!r}] must be a dict, got {type(kwargs[name]).__name__}")
    rendering = kwargs.get("rendering_kwargs") or {}
    for name, limits in RENDERING_LIMITS.items():
        check_int(rendering, name, limits, "rendering_kwargs")
    check_int(kwargs.get("mapping_kwargs") or {}, "num_layers", (0, 64), "mapping_kwargs")
    for name, limits in (("channel_base", (1, 2 ** 20)), ("channel_max", (1, 4096))):
        check_int(kwargs.get("sr_kwargs") or {}, name, limits, "sr_kwargs")


def build_generator(generator_kwargs: dict, neural_rendering_resolution: int | None = None,
                    metadata: GeneratorMetadata | None = None) -> TriPlaneGenerator:
    """Construct our generator from EG3D's constructor kwargs (``class_name`` optional);
    metadata: its ``GeneratorMetadata`` (default: the geometry its rendering_kwargs select)."""
    check_generator_kwargs(generator_kwargs)
    kwargs = dict(generator_kwargs)
    class_name = kwargs.pop("class_name", TRIPLANE_CLASS_NAMES[0])
    if class_name not in TRIPLANE_CLASS_NAMES:
        raise ValueError(f"generator_kwargs['class_name'] must be EG3D's TriPlaneGenerator, got {class_name!r}")
    G = TriPlaneGenerator(**kwargs)
    if neural_rendering_resolution is not None:
        G.neural_rendering_resolution = int(neural_rendering_resolution)
    if metadata is not None:
        G.metadata = metadata
    return G


def load_state_dict_checked(module: torch.nn.Module, state_dict: dict, source: str = "checkpoint") -> None:
    """Load with strict names and shapes; the error lists every missing, unexpected or
    mismatched key by name."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        lines = [f"{source} does not match the generator:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): " + ", ".join(missing))
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
        if mismatched:
            lines.append(f"  shape mismatches ({len(mismatched)}): " + "; ".join(mismatched))
        raise ValueError("\n".join(lines))
    module.load_state_dict(state_dict, strict=True)


def config_path_for(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".json")


def save_generator(G: TriPlaneGenerator, path: str | os.PathLike, extra: dict | None = None,
                   dtype: torch.dtype | None = None) -> Path:
    """Write ``path`` (.safetensors, EG3D key names) and its JSON config beside it (constructor
    kwargs, neural rendering resolution, ``G.metadata``, then ``extra``). dtype: store
    floating-point tensors in this dtype (e.g. torch.float16 to halve the file; loading casts
    them back to the model's float32)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end in .safetensors, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(path))
    config = {"generator_kwargs": {"class_name": TRIPLANE_CLASS_NAMES[0], **G.init_kwargs},
              "neural_rendering_resolution": int(G.neural_rendering_resolution),
              **G.metadata.to_config()}
    config.update(extra or {})
    config_path_for(path).write_text(json.dumps(config, indent=1))
    return path


def load_safetensors_generator(path: str | os.PathLike) -> TriPlaneGenerator:
    path = Path(path)
    config_path = config_path_for(path)
    if not config_path.exists():
        raise FileNotFoundError(f"{path} needs its config {config_path} (EG3D constructor kwargs as "
                                "'generator_kwargs' and 'neural_rendering_resolution')")
    config = json.loads(config_path.read_text())
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: the config must be a JSON object, got {type(config).__name__}")
    kwargs = config.get("generator_kwargs", config)
    metadata = GeneratorMetadata.from_config(config, kwargs.get("rendering_kwargs"))
    G = build_generator(kwargs, config.get("neural_rendering_resolution"), metadata)
    load_state_dict_checked(G, load_file(str(path)), source=str(path))
    return G


def load_eg3d_pickle_generator(path: str | os.PathLike, network: str = "G_ema") -> TriPlaneGenerator:
    record = read_eg3d_pickle(path, networks=(network,))[network]
    if record.class_name != "TriPlaneGenerator":
        raise ValueError(f"{path}: {network} is a {record.class_name}, expected TriPlaneGenerator")
    metadata = GeneratorMetadata.from_config(None, record.init_kwargs.get("rendering_kwargs"))
    G = build_generator(record.init_kwargs, record.attributes.get("neural_rendering_resolution"), metadata)
    load_state_dict_checked(G, record.state_dict, source=f"{path} ({network})")
    return G


def load_generator(path_or_name: str | os.PathLike, device: str | torch.device = "cpu") -> TriPlaneGenerator:
    """Load a generator from an EG3D network pickle (``.pkl``, read without executing code), a
    safetensors state dict with its JSON config, or the name ``"default"`` (the embedded model).
    Returned in eval mode on ``device``.

    Errors: FileNotFoundError for a missing file, ``UnsafePickleError`` for a pickle that would
    run code (nothing is executed), and ``CheckpointError`` naming the file for anything else that
    is malformed (truncated or corrupt files, configs that do not build a generator)."""
    name = os.fspath(path_or_name)
    if name == "default":
        weights = DEFAULT_MODEL_DIR / "generator.safetensors"
        if not weights.exists():
            raise FileNotFoundError(
                "the embedded default generator is not part of this installation yet "
                f"(expected {weights}); pass an EG3D .pkl or a .safetensors checkpoint")
        loader, source = load_safetensors_generator, weights
    elif name.endswith(".pkl"):
        loader, source = load_eg3d_pickle_generator, name
    elif name.endswith(".safetensors"):
        loader, source = load_safetensors_generator, name
    else:
        raise ValueError(f"path_or_name must be an EG3D .pkl, a .safetensors file or 'default', got {name!r}")
    try:
        G = loader(source)
    except (UnsafePickleError, FileNotFoundError, CheckpointError):
        raise
    except Exception as e:  # noqa: BLE001 - every way a corrupt file fails becomes one clear error
        raise CheckpointError(f"{name}: cannot load the generator ({type(e).__name__}: {e})") from e
    return G.to(device).eval()
