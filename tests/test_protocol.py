"""The generator protocol is all the inversion methods use (issue 19): every method, the
regularizers, the evaluation and the outputs run on a generator that exposes exactly
``inversion.protocol.NeRFGenerator`` (plus the module methods the protocol names) and raises on
any other attribute, so sniffing (``hasattr``) or reaching into a tri-plane generator fails."""

from __future__ import annotations

import pytest
import torch

import inversion
from inversion.evaluation import depth_consistency, score_views
from inversion.outputs import write_reconstruction, write_turntable
from inversion.protocol import NeRFGenerator
from mlp_generator import MLPRadianceGenerator
from test_golden_runs import MSE, _frames, _options, _tiny_triplane

MODULE_METHODS = frozenset({"state_dict", "load_state_dict", "named_parameters", "parameters",
                            "requires_grad_"})
PROTOCOL = frozenset(n for n in vars(NeRFGenerator) if not n.startswith("_")) \
    | frozenset(NeRFGenerator.__annotations__)


class ProtocolViolation(Exception):
    """Not an AttributeError, so ``hasattr`` cannot swallow it."""


class StrictGenerator:
    """Wraps a generator; only the protocol's names and ``MODULE_METHODS`` pass through."""

    def __init__(self, inner):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "used", set())

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in PROTOCOL | MODULE_METHODS:
            raise ProtocolViolation(f"the inversion layer used {name!r}, which the protocol lacks")
        self.used.add(name)
        if name == "clone":
            return lambda: StrictGenerator(self._inner.clone())
        return getattr(self._inner, name)

    def __setattr__(self, name, value):
        raise ProtocolViolation(f"the inversion layer set {name!r} on the generator")


def test_the_protocol_names_what_the_methods_use():
    assert {"mapping", "synthesis", "point_query", "ray_samples", "ray_range", "clone",
            "params_to_tune", "metadata", "noise_buffers", "w_avg", "num_ws"} <= PROTOCOL
    strict = StrictGenerator(_tiny_triplane())
    with pytest.raises(ProtocolViolation, match="planes"):
        hasattr(strict, "planes")
    with pytest.raises(ProtocolViolation, match="alignment"):
        strict.alignment = {}


@pytest.mark.parametrize("make", [_tiny_triplane, MLPRadianceGenerator], ids=["triplane", "mlp"])
def test_generators_implement_the_protocol(make):
    assert isinstance(make(), NeRFGenerator)


@pytest.mark.parametrize("method", inversion.METHODS)
def test_every_method_runs_on_a_strict_generator(method):
    torch.manual_seed(0)
    inner = _tiny_triplane()
    G = StrictGenerator(inner)
    target = _frames(inner)
    if method in ("w", "wplus", "pti", "nerfinvertor"):
        target = inversion.Target(target.images[1:2], target.cameras[1:2])
    result = inversion.run(method, G, target, progress=False, loss=inversion.ImageLoss(**MSE),
                           seed=0, **_options(method))
    assert torch.isfinite(result.ws).all()
    assert {"mapping", "synthesis"} <= G.used


def test_regularizers_evaluation_and_outputs_run_on_a_strict_generator(tmp_path):
    torch.manual_seed(0)
    inner = _tiny_triplane()
    G, G0 = StrictGenerator(inner), StrictGenerator(inner.clone())
    target = _frames(inner)
    ws = inner.mapping(torch.randn(2, inner.z_dim), target.cameras[:1].expand(2, -1))
    for source in ("generator", "stratified"):
        terms = inversion.neighborhood_batch(G, G0, ws, target.cameras[:2], resolution=4,
                                             n_samples=6, sample_source=source, masks="reference")
        assert torch.isfinite(terms["weighted_colour"])
    assert {"point_query", "ray_samples", "ray_range"} <= G.used
    truth = {"rgb": target.images}
    scores = score_views(G, ws[:1], truth, target.cameras)
    assert min(scores["psnr"]) > 0
    assert depth_consistency(G, ws[:1], target.cameras, target.cameras[:1]) == 0
    write_reconstruction(G, ws[:1], inversion.Target(target.images[:1], target.cameras[:1]), tmp_path)
    assert write_turntable(G, ws[:1], target.cameras[0], tmp_path, frames=2).exists()
    assert "metadata" in G.used


def test_both_checkpoint_formats_fill_the_metadata(tmp_path):
    from nerfgan_kernels.models import load_generator, save_generator
    from nerfgan_kernels.models.metadata import GeneratorMetadata
    from nerfgan_kernels.render.cameras import AFHQ, FFHQ
    G = _tiny_triplane()
    assert G.metadata.geometry is FFHQ and G.metadata.alignment is None
    G.metadata = GeneratorMetadata(AFHQ, {"yaw_bias": [1.0, 0.5]})
    loaded = load_generator(save_generator(G, tmp_path / "g.safetensors"))
    assert loaded.metadata.alignment == G.metadata.alignment
    # the preset's distributions, the radius and pivot the generator renders with
    assert loaded.metadata.geometry.name == "afhq"
    assert list(loaded.metadata.geometry.pivot) == G.rendering_kwargs["avg_camera_pivot"]
    # an EG3D config with AFHQ's pivot selects AFHQ's distributions (pickles carry no preset name)
    afhq = GeneratorMetadata.from_config(None, {"avg_camera_radius": 2.7, "avg_camera_pivot": [0, 0, -0.06]})
    assert afhq.geometry is AFHQ
    with pytest.raises(ValueError, match="geometry must be one of"):
        GeneratorMetadata.from_config({"geometry": "lsun"}, {})
    default = load_generator("default")
    assert default.metadata.alignment is not None and default.metadata.geometry is FFHQ


def test_stage_configs_are_never_changed_in_place():
    from inversion.loop import LoopConfig
    from inversion.pti import PTIConfig
    torch.manual_seed(0)
    G = _tiny_triplane()
    frames = _frames(G)
    target = inversion.Target(frames.images[:1], frames.cameras[:1])
    loop, config = LoopConfig(steps=0, progress=False), PTIConfig(steps=2)
    r = inversion.pivotal_tuning(G, target, G.w_avg.view(1, 1, -1).expand(1, G.num_ws, -1), config,
                                 loss=inversion.ImageLoss(**MSE), loop=loop, lr=1e-3)
    assert loop == LoopConfig(steps=0, progress=False) and config == PTIConfig(steps=2)
    assert r.options["lr"] == 1e-3 and r.options["steps"] == 2 and len(r.logs) == 2
    with pytest.raises(ValueError, match=r"PTIConfig: unknown options \['learning_rate'\]"):
        inversion.pivotal_tuning(G, target, r.ws, learning_rate=1.0)
    with pytest.raises(ValueError, match="unknown options"):
        inversion.run("pti", G, target, tuning_step=3)
