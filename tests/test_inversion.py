"""Inversion layer: targets, losses, loop resume, results, neighbourhood batching, methods on two
different generators (the MLP test generator and a tiny EG3D tri-plane generator)."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import inversion
from inversion.losses import ImageLoss, LPIPSWeightsMissing, backbone_weights_path, load_lpips
from inversion.neighborhood import neighborhood_batch
from mlp_generator import MLPRadianceGenerator
from nerfgan_kernels.render import look_at_camera

MSE_ONLY = dict(mse_weight=1.0, perceptual_weight=0.0, perceptual="none")


def _target(G, seed=0):
    c = look_at_camera(1.57, 1.57)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed)), c)
        return ws, inversion.Target(G.synthesis(ws, c)["image"], c)


def test_target_loads_png_and_both_camera_formats(tmp_path):
    img = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "a.png", img)
    label = list(np.arange(25, dtype=float))
    (tmp_path / "cam.json").write_text(json.dumps({"label": label}))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["a.png", label]]}))
    t1 = inversion.load_target(tmp_path / "a.png", tmp_path / "cam.json")
    t2 = inversion.load_target(tmp_path / "a.png")  # dataset.json beside the image
    assert t1.images.shape == (1, 3, 8, 8) and t1.images.min() >= -1 and t1.images.max() <= 1
    assert torch.equal(t1.cameras, t2.cameras) and t1.cameras[0, 24] == 24
    assert torch.allclose(t1.images[0, :, 0, 0], torch.tensor(img[0, 0] / 127.5 - 1, dtype=torch.float32))
    with pytest.raises(ValueError, match="cameras"):
        inversion.Target(torch.zeros(1, 3, 4, 4), torch.zeros(1, 16))


def test_lpips_without_weights_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(LPIPSWeightsMissing, match="vgg16-397923af.pth") as err:
        load_lpips("vgg")
    assert str(backbone_weights_path("vgg").parent) in str(err.value)
    random_net = load_lpips("vgg", pnet_rand=True)  # tests opt in explicitly
    loss = ImageLoss(1.0, 1.0, perceptual=random_net)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x)[0].item() == pytest.approx(0.0, abs=1e-6)
    assert ImageLoss(0.0, 1.0, "mse+ssim")(x, -x)[0].item() > 0.5


def test_lpips_backbone_is_fetched_the_torchvision_way_unless_offline(monkeypatch, tmp_path):
    """Without the backbone in the hub cache: offline (the tests' NERFGAN_OFFLINE=1) nothing is
    fetched; online it is fetched through torchvision's weights URL with a bounded timeout, and
    when that fails the loss falls back to MSE + SSIM with one warning naming the file."""
    import socket
    import warnings
    import inversion.losses as losses
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    calls = []
    monkeypatch.setattr(losses, "fetch_backbone", lambda net: calls.append(net) or (_ for _ in ()).throw(OSError("no route")))
    with pytest.raises(LPIPSWeightsMissing, match="NERFGAN_OFFLINE=1 forbids"):
        load_lpips("alex")
    assert calls == []
    monkeypatch.setenv("NERFGAN_OFFLINE", "0")
    with pytest.raises(LPIPSWeightsMissing, match="fetching it failed.*no route"):
        load_lpips("alex")
    assert calls == ["alex"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss, note = losses.loss_with_fallback("lpips-vgg")
    assert loss.perceptual_name == "mse+ssim" and "vgg16-397923af.pth" in note
    assert len([w for w in caught if "vgg16-397923af.pth" in str(w.message)]) == 1
    monkeypatch.undo()
    seen = {}

    def fake_download(url, progress=True, check_hash=False):
        seen.update(url=url, timeout=socket.getdefaulttimeout(), check_hash=check_hash)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    losses.fetch_backbone("vgg")
    assert seen["url"].endswith("/vgg16-397923af.pth") and seen["timeout"] == losses.FETCH_TIMEOUT_S
    assert seen["check_hash"] and socket.getdefaulttimeout() != losses.FETCH_TIMEOUT_S


def test_result_roundtrip_and_delta(tmp_path):
    G = MLPRadianceGenerator()
    base = MLPRadianceGenerator()
    with torch.no_grad():
        G.field[0].weight.add_(1.0)
    r = inversion.Result("pti", torch.randn(1, 2, 16), inversion.result.state_delta(G, base.state_dict()),
                         {"pti": 1.5}, {"psnr": 20.0})
    loaded = inversion.Result.load(r.save(tmp_path / "r"))
    assert list(loaded.delta) == ["field.0.weight"] and torch.equal(loaded.ws, r.ws)
    loaded.apply_to(base)
    assert torch.allclose(base.field[0].weight, G.field[0].weight)


def test_resume_after_kill_reaches_same_ws(tmp_path):
    """A run stopped after 3 of 6 steps and resumed from its checkpoint equals an unbroken run."""
    G = MLPRadianceGenerator()
    _, target = _target(G)
    opts = dict(projection="wplus", projection_steps=6, progress=False, seed=3,
                loss=ImageLoss(**MSE_ONLY), projection_options={"w_std_samples": 64})
    full = inversion.run("wplus", G, target, **opts)
    part = inversion.run("wplus", G, target, checkpoint_dir=tmp_path, checkpoint_every=2, stop_after=3, **opts)
    assert len(part.logs) == 3
    resumed = inversion.run("wplus", G, target, checkpoint_dir=tmp_path, checkpoint_every=2, **opts)
    assert len(resumed.logs) == 6
    assert torch.equal(resumed.ws, full.ws)


def test_nerfinvertor_resume_after_kill_reaches_same_weights(tmp_path):
    """Both stages resume (optimizer, EMA and tuned weights come back from the checkpoints)."""
    _, target = _target(MLPRadianceGenerator())
    opts = dict(projection_steps=3, tuning_steps=4, progress=False, seed=1, loss=ImageLoss(**MSE_ONLY),
                projection_options={"w_std_samples": 32},
                tuning_options={"explicit_resolution": 4, "explicit_samples": 6, "ema_decay": 0.5})
    full = inversion.run("nerfinvertor", MLPRadianceGenerator(), target, **opts)
    for stop_after in (2, 2, None):  # killed in projection, killed in tuning, then completed
        resumed = inversion.run("nerfinvertor", MLPRadianceGenerator(), target, checkpoint_dir=tmp_path,
                                checkpoint_every=1, stop_after=stop_after, **opts)
    assert torch.equal(resumed.ws, full.ws) and set(resumed.delta) == set(full.delta)
    assert all(torch.equal(resumed.delta[k], full.delta[k]) for k in full.delta)


class CountingMLP(MLPRadianceGenerator):
    calls = 0

    def sample_mixed(self, coords, dirs, ws, **kw):
        type(self).calls += 1
        return super().sample_mixed(coords, dirs, ws, **kw)


def test_neighborhood_batch_is_one_call_per_generator_when_it_fits():
    G = CountingMLP()
    G0 = G.clone()
    ws = G.mapping(torch.randn(3, G.z_dim), look_at_camera(1.57, 1.57).expand(3, -1))
    cams = inversion.random_cameras(2)
    CountingMLP.calls = 0
    out = neighborhood_batch(G, G0, ws, cams, resolution=6, n_samples=8, max_memory_bytes=2 ** 30)
    assert out["chunks"] == 1 and CountingMLP.calls == 2  # K=3 latents x V=2 cameras: G once, G0 once
    assert out["weighted_colour"].item() == 0  # G0 is a copy of G
    CountingMLP.calls = 0
    small = neighborhood_batch(G, G0, ws, cams, resolution=6, n_samples=8, max_memory_bytes=3 * 8 * 64 * 8 * 20)
    assert small["chunks"] == CountingMLP.calls / 2 == 4  # 72 rays in chunks of 20


def test_nerfinvertor_explicit_term_has_gradient_through_chunks():
    G = MLPRadianceGenerator()
    G0 = G.clone()
    with torch.no_grad():
        G0.field[-1].bias.add_(0.3)
    ws = G.mapping(torch.randn(2, G.z_dim), look_at_camera(1.57, 1.57).expand(2, -1))
    out = neighborhood_batch(G, G0, ws, inversion.random_cameras(1), resolution=4, n_samples=6,
                             max_memory_bytes=2 * 6 * 64 * 8 * 5)
    out["weighted_colour"].backward()
    assert out["chunks"] > 1 and G.field[-1].bias.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["w", "wplus", "pti", "nerfinvertor"])
def test_methods_run_on_mlp_generator(method):
    G = MLPRadianceGenerator()
    _, target = _target(G, seed=1)
    r = inversion.run(method, G, target, projection_steps=3, tuning_steps=2, progress=False,
                      loss=ImageLoss(**MSE_ONLY), projection_options={"w_std_samples": 32},
                      tuning_options={"explicit_resolution": 4, "explicit_samples": 6}
                      if method == "nerfinvertor" else None)
    assert r.method == method and r.ws.shape == (1, 2, 16) and np.isfinite(r.metrics["psnr"])
    assert (len(r.delta) > 0) == (method in ("pti", "nerfinvertor"))
    if method == "nerfinvertor":
        assert r.metrics["neighbor_alpha"] > 0


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        inversion.run("gan", MLPRadianceGenerator(), _target(MLPRadianceGenerator())[1])


def test_triplane_neighborhood_batch_is_one_broadcast_launch():
    """On the EG3D generator, K=2 latents x V=2 cameras are one point query per generator: planes
    (2, ...) against one shared point set (1, M, 3), the broadcast form of the fused op."""
    from nerfgan_kernels.models import build_generator
    from test_inversion_acceptance import tiny_triplane_kwargs
    torch.manual_seed(0)
    G = build_generator(tiny_triplane_kwargs(), 32)
    G0 = G.clone()
    ws = G.mapping(torch.randn(2, 16), look_at_camera(1.57, 1.57).expand(2, -1)).detach()
    calls = []
    for gen in (G, G0):
        original = gen.renderer.sample_mixed
        gen.renderer.sample_mixed = lambda p, d, c, r=None, b=1.0, original=original: (
            calls.append((p.shape[0], tuple(c.shape))), original(p, d, c, r, b))[1]
    cams = inversion.random_cameras(2)
    out = neighborhood_batch(G, G0, ws, cams, resolution=4, n_samples=8, sample_source="stratified")
    assert out["chunks"] == 1 and calls == [(2, (1, 2 * 16 * 8, 3))] * 2
    calls.clear()  # G's own coarse + importance samples (12 + 12): per-latent points, still one query
    out = neighborhood_batch(G, G0, ws, cams, resolution=4)
    assert out["chunks"] == 1 and calls == [(2, (2, 2 * 16 * 24, 3))] * 2
    assert out["weighted_colour"].item() < 1e-6


def _mask_case(threshold=0.5, masks="reference", k=1):
    G = MLPRadianceGenerator()
    G0 = G.clone()
    with torch.no_grad():
        G.field[-1].bias.add_(0.2)
    ws = G0.mapping(torch.randn(k, G.z_dim, generator=torch.Generator().manual_seed(3)),
                    look_at_camera(1.57, 1.57).expand(k, -1))
    cams = inversion.random_cameras(2, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)  # the stratified jitter
    return G, G0, ws, cams, neighborhood_batch(G, G0, ws, cams, resolution=6, n_samples=10, masks=masks,
                                               mask_threshold=threshold, sample_source="stratified",
                                               max_memory_bytes=10 * 64 * 8 * 25)


def test_reference_mask_equals_the_same_mask_given_explicitly():
    """masks='reference' (foreground = G0 opacity > threshold, found inside the chunk loop) gives
    the same terms as passing that mask, computed separately from G0 on the same rays, as a tensor
    (threshold: the median opacity, so the MLP generator's fog splits into both kinds of rays)."""
    from inversion.neighborhood import ray_samples
    from nerfgan_kernels.render.compositing import weighted_colours
    G, G0, ws, cams, _ = _mask_case()
    torch.manual_seed(0)
    coords, dirs, depths = ray_samples(cams, 6, 10, *G0.ray_range)
    with torch.no_grad():
        out0 = G0.point_query(ws)(coords.reshape(1, -1, 3), dirs.reshape(1, -1, 3))
        _, wsum0, _, _ = weighted_colours(out0, depths.reshape(-1, 10, 1),
                                          (float(depths.min()), float(depths.max())))
    threshold = float(wsum0.median())
    fg = (wsum0[0, :, 0] > threshold).float().reshape(2, 1, 6, 6)
    assert 0.3 < fg.mean() < 0.7
    *_, ref = _mask_case(threshold=threshold)
    *_, given = _mask_case(masks=fg)
    assert ref["chunks"] > 1 and ref["foreground_fraction"] == pytest.approx(float(fg.mean()))
    for name in ("weighted_colour", "density", "depth", "background_opacity"):
        assert torch.allclose(ref[name], given[name], rtol=1e-5, atol=1e-7), name
    assert ref["background_opacity"] > 0 and ref["weighted_colour"] > 0


def test_reference_mask_extremes_and_bad_masks():
    *_, none = _mask_case(masks=None, k=2)
    *_, all_fg = _mask_case(threshold=-1.0, k=2)
    *_, all_bg = _mask_case(threshold=2.0, k=2)
    for name in ("weighted_colour", "density", "depth"):
        assert torch.allclose(none[name], all_fg[name], rtol=1e-6), name
        assert all_bg[name] == 0, name
    assert none["background_opacity"] == 0 and all_fg["foreground_fraction"] == 1.0
    assert all_bg["foreground_fraction"] == 0.0 and all_bg["background_opacity"] > 0
    with pytest.raises(ValueError, match="masks"):
        _mask_case(masks="g0")
    with pytest.raises(ValueError, match="masks"):
        _mask_case(masks=torch.ones(1, 1, 6, 6))


def test_masked_nerfinvertor_uses_masked_terms_and_derives_the_input_mask():
    """masked=True without target masks: the input-view mask comes from G0's opacity at the pivot;
    every masked term is computed and has a gradient."""
    G = MLPRadianceGenerator()
    _, target = _target(G, seed=2)
    r = inversion.run("nerfinvertor", G, target, projection_steps=2, tuning_steps=2, progress=False,
                      loss=ImageLoss(**MSE_ONLY), projection_options={"w_std_samples": 32},
                      tuning_options={"explicit_resolution": 6, "explicit_samples": 8, "masked": True})
    assert {"mask", "neighbor_background_opacity", "explicit", "implicit"} <= set(r.logs[-1])
    assert r.options["tuning"]["masked"] is True and len(r.delta) > 0


def test_reported_ssim_is_the_standard_gaussian_ssim():
    """evaluation.ssim (the reported score) equals Wang et al.'s SSIM with an 11x11 Gaussian window,
    sigma 1.5, computed here independently on the valid region; the loss's fast_ssim (7-pixel
    uniform window) differs."""
    from inversion.evaluation import ssim
    from inversion.losses import fast_ssim
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 48, 40, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    x, y = (a + 1) / 2, (b + 1) / 2
    r = torch.arange(-5, 6, dtype=torch.float64)
    k = torch.exp(-r ** 2 / (2 * 1.5 ** 2))
    k = (k[:, None] * k[None]) / (k.sum() ** 2)
    w = k.expand(3, 1, 11, 11)
    f = lambda t: torch.nn.functional.conv2d(t.double(), w, groups=3)  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ref = ((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean()
    assert ssim(a, b) == pytest.approx(float(ref), abs=1e-5)
    assert ssim(a, a) == pytest.approx(1.0)
    assert abs(float(fast_ssim(a, b)) - ssim(a, b)) > 1e-3


def test_lpips_uses_a_backbone_present_in_torch_home(monkeypatch, tmp_path):
    """A backbone file under torchvision's name in $TORCH_HOME/hub/checkpoints is what LPIPS
    loads (here a randomly initialised VGG16 state dict stands in for the ImageNet one); nothing
    is fetched, even online."""
    import torchvision
    import inversion.losses as losses
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("NERFGAN_OFFLINE", "0")
    monkeypatch.setattr(losses, "fetch_backbone", lambda net: pytest.fail("fetched although present"))
    path = backbone_weights_path("vgg")
    assert path == tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    fake = torchvision.models.vgg16(weights=None).state_dict()
    torch.save(fake, path)
    model = load_lpips("vgg")
    first = next(model.net.parameters())
    assert torch.equal(first, fake["features.0.weight"])  # the file's weights, not the real ones
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(model(x, x).mean()) == pytest.approx(0.0, abs=1e-6)
