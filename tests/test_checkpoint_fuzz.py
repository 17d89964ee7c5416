"""The checkpoint loaders on malformed input (hypothesis): truncated or corrupted EG3D pickles,
truncated safetensors, hostile JSON configs. Each gives FileNotFoundError, UnsafePickleError or
a CheckpointError naming the file, never another exception, a hang or executed code."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_models import SMALL_PICKLE as SMALL_PICKLE_PATH
from nerfgan_kernels.models import CheckpointError, UnsafePickleError, build_generator, load_generator, save_generator
from test_inversion_acceptance import tiny_triplane_kwargs

CLEAR = (CheckpointError, UnsafePickleError, FileNotFoundError)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL_PICKLE = Path(SMALL_PICKLE_PATH)


def load_clearly(path) -> None:
    """load_generator succeeds (a harmless corruption) or fails with one of the clear errors."""
    try:
        load_generator(path)
    except CLEAR as e:
        assert str(e), "an error without a message"
        if isinstance(e, CheckpointError):  # names the checkpoint or its config
            assert Path(path).stem in str(e), str(e)


_TINY: list = []


def tiny_checkpoint() -> tuple[bytes, str]:
    """A tiny generator's safetensors bytes and JSON config (made once; not a test argument, so
    hypothesis never prints the bytes)."""
    if not _TINY:
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as d:
            path = save_generator(build_generator(tiny_triplane_kwargs(), 32), Path(d) / "g.safetensors")
            _TINY.append((path.read_bytes(), path.with_suffix(".json").read_text()))
    return _TINY[0]


@pytest.mark.skipif(not SMALL_PICKLE.exists(), reason="needs ../shared/fixtures/eg3d/small_network.pkl")
@FUZZ
@given(data=st.data())
def test_corrupt_pickles_fail_clearly(data):
    blob = SMALL_PICKLE.read_bytes()
    kind = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if kind == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        blob = bytearray(blob)
        for i in data.draw(st.lists(st.integers(0, len(blob) - 1), min_size=1, max_size=8)):
            blob[i] ^= data.draw(st.integers(1, 255))
        blob = bytes(blob)
    else:
        blob = data.draw(st.binary(max_size=512))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzzed.pkl"
        path.write_bytes(blob)
        load_clearly(path)


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "evil.pkl"

    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    ran = []
    monkeypatch.setattr(os, "system", lambda cmd: ran.append(cmd))
    with pytest.raises(UnsafePickleError):
        load_generator(path)
    assert ran == []


@FUZZ
@given(cut=st.floats(0.0, 0.999))
def test_truncated_safetensors_fail_clearly(cut):
    weights, config = tiny_checkpoint()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzzed.safetensors"
        path.write_bytes(weights[:int(cut * len(weights))])
        path.with_suffix(".json").write_text(config)
        with pytest.raises(CheckpointError, match="fuzzed.safetensors"):
            load_generator(path)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
KEYS = ["z_dim", "c_dim", "w_dim", "img_resolution", "channel_base", "channel_max", "rendering_kwargs",
        "mapping_kwargs", "sr_kwargs", "class_name", "num_fp16_res"]


@FUZZ
@given(data=st.data())
def test_hostile_json_configs_fail_clearly(data):
    weights, config = tiny_checkpoint()
    cfg = json.loads(config)
    kind = data.draw(st.sampled_from(["value", "top", "rendering", "text"]))
    if kind == "value":
        cfg["generator_kwargs"][data.draw(st.sampled_from(KEYS))] = data.draw(JSON)
    elif kind == "top":
        cfg = data.draw(JSON)
    elif kind == "rendering":
        key = data.draw(st.sampled_from(["depth_resolution", "depth_resolution_importance", "box_warp",
                                         "superresolution_module", "ray_start", "avg_camera_pivot"]))
        cfg["generator_kwargs"]["rendering_kwargs"][key] = data.draw(JSON)
    text = data.draw(st.text(max_size=40)) if kind == "text" else json.dumps(cfg)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzzed.safetensors"
        path.write_bytes(weights)
        path.with_suffix(".json").write_text(text)
        load_clearly(path)
