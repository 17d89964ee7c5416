"""EG3D-compatible generator: parity with EG3D's recorded outputs, official key names, safe
checkpoint loading."""

from __future__ import annotations

import json
import os
import pickle
import sys
import types

import pytest
import torch
from safetensors.torch import load_file

from nerfgan_kernels.models import (UnsafePickleError, build_generator,
                                    load_generator, read_eg3d_pickle, save_generator)
from nerfgan_kernels.models.checkpoint import load_state_dict_checked
from helpers import SHARED_FIXTURES, fixture_path, rel_err

SMALL_PICKLE = os.path.join(SHARED_FIXTURES, "small_network.pkl")
needs_small_pickle = pytest.mark.skipif(not os.path.exists(SMALL_PICKLE),
                                        reason="shared fixture small_network.pkl not present")


@pytest.fixture(scope="module")
def fixture_generator():
    config = json.load(open(fixture_path("fixture_full.json")))
    G = build_generator(config["generator_kwargs"], config["neural_rendering_resolution"])
    load_state_dict_checked(G, load_file(fixture_path("fixture_full_state_dict.safetensors")))
    return G.eval()


@pytest.fixture(scope="module")
def fixture_outputs():
    return load_file(fixture_path("fixture_full.safetensors"))


def test_mapping_matches_eg3d(fixture_generator, fixture_outputs):
    G, fx = fixture_generator, fixture_outputs
    assert rel_err(G.mapping(fx["z"], fx["c"]), fx["ws"]) <= 1e-5
    assert rel_err(G.mapping(fx["z"], fx["c"], truncation_psi=0.7), fx["ws_psi0p7"]) <= 1e-5
    ws_cut = G.mapping(fx["z"], fx["c"], truncation_psi=0.5, truncation_cutoff=8)
    assert rel_err(ws_cut, fx["ws_psi0p5_cutoff8"]) <= 1e-5


def test_planes_match_eg3d_elementwise(fixture_generator, fixture_outputs):
    G, fx = fixture_generator, fixture_outputs
    with torch.no_grad():
        planes = G.planes(fx["ws"], noise_mode="const")
    assert planes.shape == (2, 3, 32, 256, 256)
    assert rel_err(planes[..., ::8, ::8], fx["planes_sub8"]) <= 1e-5
    assert rel_err(planes.sum((-1, -2)), fx["planes_channel_sum"]) <= 1e-5
    assert rel_err(planes.square().sum((-1, -2)), fx["planes_channel_sqsum"]) <= 1e-5


def test_synthesis_matches_eg3d_deterministic(fixture_generator, fixture_outputs):
    G, fx = fixture_generator, fixture_outputs
    with torch.no_grad():
        out = G.synthesis(fx["ws"], fx["c"], noise_mode="const", deterministic=True)
    assert rel_err(out["image_raw"], fx["image_raw_composite"]) <= 1e-4
    assert rel_err(out["image_depth"], fx["image_depth"]) <= 1e-4
    assert rel_err(out["feature_image"], fx["feature_image"]) <= 1e-4
    assert rel_err(out["image"], fx["image"]) <= 1e-4
    # EG3D's aliased image_raw (its NoUp SR block adds in place) behind the flag
    G.aliased_image_raw = True
    try:
        with torch.no_grad():
            aliased = G.synthesis(fx["ws"], fx["c"], deterministic=True)["image_raw"]
    finally:
        G.aliased_image_raw = False
    assert rel_err(aliased, fx["image_raw"]) <= 1e-4
    assert rel_err(out["image_raw"], fx["image_raw"]) > 1e-3  # the two really differ here


def test_synthesis_matches_eg3d_with_recorded_random_draws(fixture_generator, fixture_outputs):
    G, fx = fixture_generator, fixture_outputs
    overrides = {"stratified_jitter": fx["stoch_stratified_jitter"], "importance_u": fx["stoch_importance_u"]}
    with torch.no_grad():
        out = G.synthesis(fx["ws"], fx["c"], render_overrides=overrides)
    assert rel_err(out["image_depth"], fx["stoch_image_depth"]) <= 1e-4
    assert rel_err(out["image"], fx["stoch_image"]) <= 1e-4


MANIFEST = json.load(open(fixture_path("ffhq512_manifest.json")))


@pytest.fixture(scope="module")
def ffhq512():
    torch.manual_seed(0)
    G = build_generator(MANIFEST["generator_kwargs"],
                        MANIFEST["neural_rendering_resolution_of_released_ffhq512_128_model"])
    return G.eval()


def test_ffhq512_names_shapes_and_order_equal_the_manifest(ffhq512):
    sd = ffhq512.state_dict()
    expected = {**MANIFEST["parameters"], **MANIFEST["buffers"]}
    assert list(sd.keys()) == MANIFEST["state_dict_order"]
    assert {k: list(v.shape) for k, v in sd.items()} == {k: list(v) for k, v in expected.items()}
    params = dict(ffhq512.named_parameters())
    assert sorted(params) == sorted(MANIFEST["parameters"])
    assert sum(p.numel() for p in params.values()) == MANIFEST["num_parameters"]
    assert ffhq512.num_ws == MANIFEST["num_ws"]


def test_ffhq512_forward_runs_on_cpu(ffhq512):
    from nerfgan_kernels.render import look_at_camera
    G = ffhq512
    z = torch.randn(1, G.z_dim)
    c = look_at_camera(torch.tensor([0.2]), torch.tensor([0.0]))
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        out = G.synthesis(ws, c)  # the released model renders at 128
    assert out["image"].shape == (1, 3, 512, 512) and out["image_depth"].shape == (1, 1, 128, 128)
    assert torch.isfinite(out["image"]).all()


# ---- checkpoints ---------------------------------------------------------------------------------

@needs_small_pickle
def test_small_pickle_loads_safely_and_reproduces_outputs(fixture_outputs):
    record = read_eg3d_pickle(SMALL_PICKLE)["G_ema"]
    reference = load_file(fixture_path("fixture_full_state_dict.safetensors"))
    assert set(record.state_dict) == set(reference)
    assert all(torch.equal(record.state_dict[k], reference[k]) for k in reference)
    G = load_generator(SMALL_PICKLE)
    assert G.neural_rendering_resolution == 64
    fx = fixture_outputs
    with torch.no_grad():
        out = G.synthesis(fx["ws"], fx["c"], deterministic=True)
    assert rel_err(out["image"], fx["image"]) <= 1e-4


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil.write_bytes(pickle.dumps({"G_ema": Payload()}))
    with pytest.raises(UnsafePickleError, match="refusing to load global"):
        read_eg3d_pickle(evil)
    with pytest.raises(UnsafePickleError):
        load_generator(evil)
    assert not marker.exists()
    # sanity: the same file really would run its payload under a normal unpickler
    # (checked without running it: the global it names is os.system / posix.system)
    assert b"system" in evil.read_bytes()


def test_persistent_module_source_is_never_executed(tmp_path, monkeypatch):
    """EG3D pickles carry module source that the usual loader exec()s; ours keeps it as data."""
    marker = tmp_path / "pwned"
    fake = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # noqa: ARG001 - never called by our loader
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", fake)

    class Persistent:
        def __reduce__(self):
            meta = {"type": "class", "version": 6, "class_name": "TriPlaneGenerator",
                    "module_src": f"open({str(marker)!r}, 'w').write('pwned')",
                    "state": {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_kwargs": {}}}
            return (_reconstruct_persistent_obj, (meta,))

    path = tmp_path / "snapshot.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Persistent()}))
    record = read_eg3d_pickle(path)["G_ema"]
    assert record.class_name == "TriPlaneGenerator" and len(record.state_dict) == 0
    assert not marker.exists()


def test_safetensors_round_trip_and_key_report(tmp_path, fixture_generator, fixture_outputs):
    path = save_generator(fixture_generator, tmp_path / "g.safetensors")
    assert path.with_suffix(".json").exists()
    G = load_generator(path)
    for k, v in fixture_generator.state_dict().items():
        assert torch.equal(G.state_dict()[k], v)
    sd = load_file(str(path))
    sd.pop("decoder.net.0.weight")
    sd["decoder.extra"] = torch.zeros(1)
    sd["decoder.net.2.bias"] = torch.zeros(5)
    with pytest.raises(ValueError, match="missing keys.*decoder.net.0.weight") as err:
        load_state_dict_checked(G, sd)
    assert "unexpected keys (1): decoder.extra" in str(err.value)
    assert "decoder.net.2.bias: checkpoint (5,) vs model (33,)" in str(err.value)


def test_float16_storage_loads_back_as_float32(tmp_path, fixture_generator):
    path = save_generator(fixture_generator, tmp_path / "half.safetensors", dtype=torch.float16)
    assert all(v.dtype == torch.float16 for v in load_file(str(path)).values() if v.is_floating_point())
    G = load_generator(path)
    for k, v in fixture_generator.state_dict().items():
        mine = G.state_dict()[k]
        assert mine.dtype == v.dtype and torch.equal(mine, v.half().to(v.dtype)), k


def test_load_generator_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="path_or_name must be"):
        load_generator(tmp_path / "model.bin")
    (tmp_path / "lonely.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="lonely.json"):
        load_generator(tmp_path / "lonely.safetensors")


def test_convert_cli(tmp_path, fixture_generator):
    if not os.path.exists(SMALL_PICKLE):
        pytest.skip("shared fixture small_network.pkl not present")
    from nerfgan_kernels.models.convert import main
    out = tmp_path / "converted.safetensors"
    assert main([SMALL_PICKLE, str(out)]) == 0
    G = load_generator(out)
    for k, v in fixture_generator.state_dict().items():
        assert torch.equal(G.state_dict()[k], v)


def test_point_queries_agree_and_carry_gradients(fixture_generator, fixture_outputs):
    G, fx = fixture_generator, fixture_outputs
    coords = (torch.rand(2, 50, 3, generator=torch.Generator().manual_seed(0)) - 0.5) * 0.8
    dirs = torch.nn.functional.normalize(torch.randn(2, 50, 3), dim=-1)
    ws = fx["ws"].clone().requires_grad_(True)
    sigma = G.sample_density(coords, ws)
    mixed = G.sample(coords, dirs, ws, fx["c"])
    from_z = G.sample(coords, dirs, fx["z"], fx["c"])
    assert sigma.shape == (2, 50, 1) and mixed["rgb"].shape == (2, 50, 32)
    torch.testing.assert_close(mixed["sigma"], sigma)
    torch.testing.assert_close(from_z["sigma"], sigma, rtol=1e-4, atol=1e-4)  # ws from z == fx ws
    sigma.sum().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="c \\(B, 25\\) is required"):
        G.sample(coords, dirs, fx["z"])


def _rename_globals(data: bytes, names: dict) -> bytes:
    """The pickle ``data`` with the SHORT_BINUNICODE strings in ``names`` replaced, written
    without frames (optional in protocol 4; their byte counts would no longer match)."""
    import pickletools

    ops = list(pickletools.genops(data))
    out = bytearray()
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        if op.name == "FRAME":
            continue
        if op.name == "SHORT_BINUNICODE" and arg in names:
            new = names[arg].encode()
            out += b"\x8c" + bytes([len(new)]) + new
        else:
            out += data[pos:end]
    return bytes(out)


@needs_small_pickle
def test_patched_generator_saved_eg3d_way_loads_back(tmp_path, fixture_outputs):
    """patch_eg3d_generator(G) then EG3D's pickle of the snapshot: the generator's renderer and
    ray sampler are now this package's classes (the same stream as EG3D writes, with those two
    globals renamed); load_generator reads it as before, running nothing."""
    data = open(SMALL_PICKLE, "rb").read()
    patched = _rename_globals(data, {
        "training.volumetric_rendering.renderer": "nerfgan_kernels.render.renderer",
        "training.volumetric_rendering.ray_sampler": "nerfgan_kernels.render.rays"})
    assert b"nerfgan_kernels.render.renderer" in patched and b"volumetric_rendering.renderer" not in patched
    path = tmp_path / "patched.pkl"
    path.write_bytes(patched)
    G = load_generator(path)
    fx = fixture_outputs
    with torch.no_grad():
        out = G.synthesis(fx["ws"], fx["c"], deterministic=True)
    assert rel_err(out["image"], fx["image"]) <= 1e-4
    # Other classes of this package stay refused (they could run code).
    evil = _rename_globals(data, {"training.volumetric_rendering.renderer": "nerfgan_kernels.render.patch",
                                  "ImportanceRenderer": "patch_eg3d_generator"})
    (tmp_path / "evil.pkl").write_bytes(evil)
    with pytest.raises(UnsafePickleError, match="refusing to load global"):
        load_generator(tmp_path / "evil.pkl")
