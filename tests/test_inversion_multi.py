"""Issue 6 on the MLP test generator (16x16 renders, targets from known latents): multi-view beats
single view on held-out cameras, multi-latent regularizers lower held-out and depth-consistency
error on inconsistent frames, the azimuth blend is continuous, incremental inversion improves
frame by frame at a fraction of a from-scratch run's cost, and the CLI runs the three methods."""

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import inversion
from inversion.evaluation import depth_consistency
from inversion.incremental import Session
from inversion.multilatent import AzimuthBlend, multilatent_inversion, multiview_inversion, split_frames
from mlp_generator import MLPRadianceGenerator
from nerfgan_kernels.render import look_at_camera

MSE = inversion.ImageLoss(1.0, 0.0, "none")
HELD = (-0.45, 0.15, 0.8)  # held-out yaws (radians from frontal)


def cams(yaws):
    return look_at_camera(math.pi / 2 + torch.tensor(yaws), torch.full((len(yaws),), math.pi / 2))


def quiet():
    return inversion.LoopConfig(steps=0, progress=False)


def scene(seed=11, jitter=0.0, yaws=(-0.6, -0.3, 0.0, 0.3, 0.6)):
    """The generator, its true latent w0, frames at ``yaws`` from w0 (+ per-frame latent jitter x
    the W spread: the video-inconsistency case), and held-out views of w0."""
    G = MLPRadianceGenerator()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w0 = G.mapping(torch.randn(1, G.z_dim, generator=g), cams([0.0]))
        spread = (G.mapping(torch.randn(64, G.z_dim, generator=g), cams([0.0]).expand(64, -1)) - G.w_avg).std()
        wf = w0 + jitter * spread * torch.randn(len(yaws), *w0.shape[1:], generator=g)
        frames = inversion.Target(G.synthesis(wf, cams(list(yaws)))["image"], cams(list(yaws)))
        held = G.synthesis(w0.expand(len(HELD), -1, -1), cams(list(HELD)))["image"]
    return G, frames, held


def held_error(G, source, held) -> float:
    with torch.no_grad():
        out = torch.cat([G.synthesis(source(c[None]) if callable(source) else source, c[None])["image"]
                         for c in cams(list(HELD))])
    return torch.nn.functional.mse_loss(out, held).item()


def test_multiview_recovers_novel_views_better_than_single_view():
    """Measured: held-out MSE 0.0035 (one frontal view) vs 0.0022 (five views), 150 steps each.
    (w_avg_weight 0: the published 1.0 is scaled for LPIPS-sized losses on EG3D's W.)"""
    G, frames, held = scene()
    single = inversion.project(G, inversion.Target(frames.images[2:3], frames.cameras[2:3]), mode="wplus",
                               steps=150, lr=0.1, loss=MSE, w_std_samples=64, loop=quiet())
    multi = multiview_inversion(G, frames, steps=150, loss=MSE, w_std_samples=64, w_avg_weight=0, loop=quiet())
    assert multi.method == "multiview" and multi.options["views"] == 5
    assert held_error(G, multi.ws, held) < 0.8 * held_error(G, single.ws, held)


def test_multiview_view_weights_are_checked_and_used():
    G, frames, _ = scene()
    with pytest.raises(ValueError, match="view_weights"):
        multiview_inversion(G, frames, steps=1, loss=MSE, w_std_samples=8, view_weights=[1, 1])
    only_first = multiview_inversion(G, frames, steps=40, loss=MSE, w_std_samples=64, w_avg_weight=0,
                                     view_weights=[1, 0, 0, 0, 0], loop=quiet())
    with torch.no_grad():
        err = [torch.nn.functional.mse_loss(G.synthesis(only_first.ws, c[None])["image"], im[None]).item()
               for c, im in zip(frames.cameras, frames.images)]
    assert err[0] < min(err[1:])  # the weighted view is the one that was fitted


def test_multilatent_regularizers_lower_held_out_and_depth_inconsistency():
    """Frames from jittered latents (0.3 x the W spread). With the three regularizers (weights
    scaled x10 since the loss here is 1.0 x MSE, ten times the paper's 0.1 x MSE) the blended
    latents give lower held-out error and depth inconsistency than without (measured: held-out MSE
    0.0041 vs 0.0079, depth std 0.00074 vs 0.0014)."""
    G, frames, held = scene(jitter=0.3)
    targets, checks = split_frames(frames.cameras)
    assert targets == [0, 2, 4] and checks == [1, 3]
    mv = multiview_inversion(G, inversion.Target(frames.images[0::2], frames.cameras[0::2]), steps=100,
                             loss=MSE, w_std_samples=64, w_avg_weight=0, loop=quiet())
    runs = {}
    for name, weights in {"without": dict(latent_weight=0, depth_weight=0, interpolation_weight=0),
                          "with": dict(latent_weight=10, depth_weight=10, interpolation_weight=1)}.items():
        r = multilatent_inversion(G, frames, shared_ws=mv.ws, iterations=60, loss=MSE, loop=quiet(), **weights)
        blend = AzimuthBlend.from_result(r)
        runs[name] = (held_error(G, blend, held), depth_consistency(G, blend, frames.cameras, cams(list(HELD))))
        assert r.ws.shape == (3, G.num_ws, G.w_dim)
    assert runs["with"][0] < 0.8 * runs["without"][0]
    assert runs["with"][1] < 0.8 * runs["without"][1]


def test_azimuth_blend_is_continuous_and_exact_at_targets():
    yaws = torch.tensor([30.0, -20.0, 5.0])
    ws = torch.randn(3, 2, 4)
    blend = AzimuthBlend(yaws, ws)
    for y, w in zip(yaws, ws):
        cam = cams([math.radians(float(y))])
        assert torch.allclose(blend(cam)[0], w, atol=1e-4)
    grid = torch.linspace(-40, 40, 801)
    path = torch.stack([blend.blend(blend.ws, float(y))[0] for y in grid])
    steps = (path[1:] - path[:-1]).flatten(1).norm(dim=1)
    max_slope = max((ws[i] - ws[j]).norm() / abs(yaws[i] - yaws[j]) for i, j in ((0, 2), (1, 2)))
    assert float(steps.max()) <= float(max_slope) * 0.1 + 1e-6  # Lipschitz: no jumps anywhere
    assert torch.equal(blend.blend(blend.ws, -90.0), blend.ws[:1])  # the end latent outside the range
    assert torch.equal(blend.blend(blend.ws, 90.0), blend.ws[-1:])
    with pytest.raises(ValueError, match="ws"):
        AzimuthBlend(yaws, torch.randn(2, 2, 4))


def test_incremental_improves_with_frames_and_matches_a_scratch_run():
    """Held-out error decreases frame after frame and ends at or below a from-scratch multi-view
    run on the same frames (100 steps over all frames, against 15 + 5 steps per new frame: the
    time per frame is measured by the session and reported, not asserted here)."""
    G, frames, held = scene(yaws=(0.0, 0.35, -0.35, 0.6, -0.6))
    scratch = multiview_inversion(MLPRadianceGenerator(), frames, steps=100, loss=MSE, w_std_samples=64,
                                  w_avg_weight=0, loop=quiet())
    scratch_error = held_error(G, scratch.ws, held)
    Gi = MLPRadianceGenerator()
    session = Session(Gi, first_steps=60, frame_steps=15, tune_steps=5, lr=0.02, loss=MSE)
    errors, seconds = [], []
    for image, camera in zip(frames.images, frames.cameras):
        seconds.append(session.add_frame(image, camera)["seconds"])
        errors.append(held_error(Gi, session.ws, held))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] <= scratch_error
    assert all(t > 0 for t in seconds)
    out = session.render(frames.cameras[:2])
    assert out["image"].shape == (2, 3, 16, 16)


def test_incremental_session_resumes_from_its_state(tmp_path):
    G, frames, held = scene(yaws=(0.0, 0.35, -0.35))
    kw = dict(first_steps=10, frame_steps=4, tune_steps=2, loss=MSE)
    full = Session(MLPRadianceGenerator(), **kw)
    for im, c in zip(frames.images, frames.cameras):
        full.add_frame(im, c)
    part = Session(MLPRadianceGenerator(), **kw)
    for im, c in zip(frames.images[:2], frames.cameras[:2]):
        part.add_frame(im, c)
    torch.save(part.state_dict(), tmp_path / "session.pt")
    resumed = Session(MLPRadianceGenerator(), **kw)
    resumed.load_state_dict(torch.load(tmp_path / "session.pt", weights_only=False))
    resumed.add_frame(frames.images[2], frames.cameras[2])
    assert torch.allclose(resumed.ws, full.ws, atol=1e-6)
    assert torch.allclose(resumed.render(frames.cameras[2])["image"], full.render(frames.cameras[2])["image"], atol=1e-5)


@pytest.mark.parametrize("method", ["multiview", "multilatent", "incremental"])
def test_cli_runs_the_multi_frame_methods(tmp_path, method):
    from inversion.cli import main
    from test_inversion_acceptance import tiny_triplane_kwargs
    from nerfgan_kernels.models import build_generator, save_generator
    torch.manual_seed(0)
    G = build_generator(tiny_triplane_kwargs(), 32)
    ckpt = save_generator(G, tmp_path / "tiny.safetensors")
    folder = tmp_path / "frames"
    folder.mkdir()
    labels = []
    for i, yaw in enumerate((-0.3, 0.0, 0.3)):
        img = (np.random.default_rng(i).random((32, 32, 3)) * 255).astype(np.uint8)
        iio.imwrite(folder / f"f{i}.png", img)
        labels.append([f"f{i}.png", cams([yaw])[0].tolist()])
    (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
    rc = main(["--method", method, "--images", str(folder), "--checkpoint", str(ckpt), "--out", str(tmp_path / "run"),
               "--fast", "--steps", "1", "--projection-steps", "2", "--frames", "2", "--perceptual", "mse+ssim",
               "--no-progress"])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rc == 0 and metrics["views"] == 3 and np.isfinite(metrics["depth_consistency"])
    assert (tmp_path / "run" / "reconstruction.png").exists()


def test_cli_reads_frames_from_a_video(tmp_path):
    from inversion.cli import main
    from test_inversion_acceptance import tiny_triplane_kwargs
    from nerfgan_kernels.models import build_generator, save_generator
    torch.manual_seed(0)
    ckpt = save_generator(build_generator(tiny_triplane_kwargs(), 32), tmp_path / "tiny.safetensors")
    frames = [(np.random.default_rng(i).random((32, 32, 3)) * 255).astype(np.uint8) for i in range(7)]
    iio.imwrite(tmp_path / "clip.mp4", np.stack(frames), fps=7, macro_block_size=1)
    labels = [[f"frame{i}", cams([yaw])[0].tolist()] for i, yaw in enumerate((-0.3, 0.0, 0.3))]
    (tmp_path / "cams.json").write_text(json.dumps({"labels": labels}))
    rc = main(["--method", "incremental", "--video", str(tmp_path / "clip.mp4"), "--video-frames", "3",
               "--camera", str(tmp_path / "cams.json"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "run"),
               "--fast", "--projection-steps", "2", "--frames", "2", "--perceptual", "mse+ssim", "--no-progress"])
    assert rc == 0 and json.loads((tmp_path / "run" / "metrics.json").read_text())["views"] == 3
    with pytest.raises(ValueError, match="must hold 4 labels"):
        inversion.target.load_video_target(tmp_path / "clip.mp4", tmp_path / "cams.json", frames=4)
