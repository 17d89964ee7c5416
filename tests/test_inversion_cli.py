"""nerfgan-invert end to end with --fast on a tiny EG3D tri-plane checkpoint written by the test."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from inversion.cli import main
from nerfgan_kernels.models import build_generator, save_generator
from nerfgan_kernels.render import look_at_camera

from test_inversion_acceptance import tiny_triplane_kwargs


@pytest.mark.parametrize("method", [["pti"], ["nerfinvertor", "--masked"]])
def test_cli_fast_runs_end_to_end(tmp_path, method):
    torch.manual_seed(0)
    G = build_generator(tiny_triplane_kwargs(), 32)
    ckpt = save_generator(G, tmp_path / "tiny.safetensors")
    c = look_at_camera(1.57, 1.57)
    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "face.png", img)
    (tmp_path / "cam.json").write_text(json.dumps({"label": c[0].tolist()}))
    rc = main(["--method", *method, "--image", str(tmp_path / "face.png"), "--camera", str(tmp_path / "cam.json"),
               "--checkpoint", str(ckpt), "--out", str(tmp_path / "run"), "--fast", "--steps", "2",
               "--projection-steps", "2", "--frames", "2", "--perceptual", "mse+ssim", "--no-progress"])
    assert rc == 0
    run = tmp_path / "run"
    for name in ("result.safetensors", "result.json", "metrics.json", "reconstruction.png", "depth.png"):
        assert (run / name).exists(), name
    assert (run / "turntable.mp4").exists() or (run / "turntable.gif").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["loss"] == "mse+ssim" and np.isfinite(metrics["input_view"]["psnr"])
    assert metrics["schema"] == "nerfgan-invert/metrics" and metrics["version"] == 1
    assert "reconstruction.png" in (run / "report.md").read_text()


class _Stop(Exception):
    pass


@pytest.mark.parametrize("schedule", ["default", "published"])
def test_cli_schedule_chooses_the_run_options(tmp_path, monkeypatch, schedule):
    """--schedule published runs the papers' step counts at the stage defaults; the default is the
    fast recipe of inversion.schedules (the same as the demo's); --steps still overrides."""
    import inversion.cli
    from inversion.schedules import FAST_NERFINVERTOR
    torch.manual_seed(0)
    ckpt = save_generator(build_generator(tiny_triplane_kwargs(), 32), tmp_path / "tiny.safetensors")
    iio.imwrite(tmp_path / "face.png", (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    (tmp_path / "cam.json").write_text(json.dumps({"label": look_at_camera(1.57, 1.57)[0].tolist()}))
    seen = []

    def fake_run(method, G, target, **options):
        seen.append(options)
        raise _Stop

    monkeypatch.setattr(inversion.cli, "run", fake_run)
    args = ["--method", "nerfinvertor", "--image", str(tmp_path / "face.png"), "--camera", str(tmp_path / "cam.json"),
            "--checkpoint", str(ckpt), "--out", str(tmp_path / "run"), "--perceptual", "none", "--schedule", schedule,
            "--debug"]
    for extra in ([], ["--steps", "7"]):
        with pytest.raises(_Stop):
            main(args + extra)
    full, short = seen
    if schedule == "published":
        assert (full["projection_steps"], full["tuning_steps"], full["tuning_options"]) == (500, 1000, {})
    else:
        assert (full["projection_steps"], full["tuning_steps"]) == (80, 35)
        assert full["tuning_options"] == FAST_NERFINVERTOR
    assert short["tuning_steps"] == 7 and short["projection_steps"] == full["projection_steps"]


def test_a_sigkilled_run_resumes_to_the_same_result(tmp_path):
    """A real nerfgan-invert process killed (SIGKILL) mid-tuning: the same command resumes from the
    last step checkpoint (steps are not redone from 0) and ends with exactly the result of an
    uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time
    from safetensors.torch import load_file
    torch.manual_seed(0)
    ckpt = save_generator(build_generator(tiny_triplane_kwargs(), 32), tmp_path / "tiny.safetensors")
    iio.imwrite(tmp_path / "face.png", (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    (tmp_path / "cam.json").write_text(json.dumps({"label": look_at_camera(1.57, 1.57)[0].tolist()}))

    def command(out):
        return [sys.executable, "-m", "inversion.cli", "--method", "pti", "--image", str(tmp_path / "face.png"),
                "--camera", str(tmp_path / "cam.json"), "--checkpoint", str(ckpt), "--out", str(out), "--fast",
                "--projection-steps", "2", "--steps", "24", "--checkpoint-every", "3", "--frames", "2",
                "--perceptual", "mse+ssim", "--no-progress"]

    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(command(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tuning = tmp_path / "killed" / "checkpoints" / "tuning.pt"
    deadline = time.time() + 300
    while not tuning.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tuning.exists() and not (tmp_path / "killed" / "result.json").exists(), "not killed mid-tuning"
    subprocess.run(command(tmp_path / "killed"), check=True, capture_output=True, timeout=600)
    steps = []
    for line in (tmp_path / "killed" / "checkpoints" / "tuning.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:  # the line the kill cut
            pass
    assert steps.count(0) == 1 and set(steps) == set(range(24)), steps
    a = load_file(str(tmp_path / "whole" / "result.safetensors"))
    b = load_file(str(tmp_path / "killed" / "result.safetensors"))
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_errors_are_one_line_and_lpips_falls_back(tmp_path, capsys):
    """A bad checkpoint or camera is one line on stderr (exit code 2, no traceback; --debug raises);
    the default LPIPS loss without its weights (offline) falls back to MSE + SSIM and says so."""
    torch.manual_seed(0)
    ckpt = save_generator(build_generator(tiny_triplane_kwargs(), 32), tmp_path / "tiny.safetensors")
    iio.imwrite(tmp_path / "face.png", (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    (tmp_path / "cam.json").write_text(json.dumps({"label": look_at_camera(1.57, 1.57)[0].tolist()}))
    base = ["--method", "pti", "--image", str(tmp_path / "face.png"), "--out", str(tmp_path / "run"), "--fast",
            "--steps", "1", "--projection-steps", "1", "--frames", "2", "--no-progress"]
    assert main(base + ["--camera", str(tmp_path / "cam.json"), "--checkpoint", str(tmp_path / "nope.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err and "Traceback" not in err
    (tmp_path / "bad.json").write_text("{}")
    assert main(base + ["--camera", str(tmp_path / "bad.json"), "--checkpoint", str(ckpt)]) == 2
    assert "'label' or 'labels'" in capsys.readouterr().err
    with pytest.raises(ValueError):
        main(base + ["--camera", str(tmp_path / "bad.json"), "--checkpoint", str(ckpt), "--debug"])
    assert main(base + ["--camera", str(tmp_path / "cam.json"), "--checkpoint", str(ckpt), "--offline"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["loss"] == "mse+ssim" and "vgg16-397923af.pth" in metrics["loss_note"]


def test_device_dtype_and_memory_options(tmp_path, monkeypatch):
    """--device auto takes CUDA only where it exists; --max-memory feeds the renderer's planner;
    --dtype bf16 runs the whole inversion under bfloat16 autocast."""
    import inversion.cli as cli
    assert cli.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            cli.resolve_device("cuda")
    G = build_generator(tiny_triplane_kwargs(), 32)
    cli.set_memory_budget(G, "cpu", 0.5)
    assert G.renderer.max_memory_bytes == 0.5 * 2 ** 30
    with pytest.raises(ValueError, match="--max-memory"):
        cli.set_memory_budget(G, "cpu", 0.0)
    torch.manual_seed(0)
    ckpt = save_generator(G, tmp_path / "tiny.safetensors")
    iio.imwrite(tmp_path / "face.png", (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    (tmp_path / "cam.json").write_text(json.dumps({"label": look_at_camera(1.57, 1.57)[0].tolist()}))
    dtypes = []
    real_run = cli.run

    def spy(*a, **kw):
        dtypes.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return real_run(*a, **kw)

    monkeypatch.setattr(cli, "run", spy)
    rc = main(["--method", "pti", "--image", str(tmp_path / "face.png"), "--camera", str(tmp_path / "cam.json"),
               "--checkpoint", str(ckpt), "--out", str(tmp_path / "run"), "--fast", "--steps", "1",
               "--projection-steps", "1", "--frames", "2", "--perceptual", "mse+ssim", "--no-progress",
               "--dtype", "bf16", "--max-memory", "0.05", "--debug"])
    assert rc == 0 and dtypes == [torch.bfloat16]
    assert np.isfinite(json.loads((tmp_path / "run" / "metrics.json").read_text())["input_view"]["psnr"])


def test_geometry_option_selects_the_camera_preset():
    """--geometry picks a preset's camera distributions (360 degrees for cars) and keeps the
    generator's own radius and pivot; NeRFInvertor's neighbour cameras then follow it."""
    import inversion.cli as cli
    from nerfgan_kernels.render.cameras import camera_angles, neighbour_cameras
    G = build_generator(tiny_triplane_kwargs(), 32)
    assert G.metadata.geometry.name == "ffhq"
    cli.set_geometry(G, "shapenet_cars")
    g = G.metadata.geometry
    assert g.name == "shapenet_cars" and g.full_azimuth and g.radius == G.rendering_kwargs["avg_camera_radius"]
    yaws, _ = camera_angles(neighbour_cameras(400, g, generator=torch.Generator().manual_seed(0)))
    assert float(yaws.abs().max()) > 150  # all the way round, unlike FFHQ's +-74 degrees
    cli.set_geometry(G, None)
    assert G.metadata.geometry is g


def test_published_schedule_tiny_run(tmp_path):
    """--schedule published end to end (its step counts cut to one step each by the overrides)."""
    torch.manual_seed(0)
    ckpt = save_generator(build_generator(tiny_triplane_kwargs(), 32), tmp_path / "tiny.safetensors")
    iio.imwrite(tmp_path / "face.png", (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    (tmp_path / "cam.json").write_text(json.dumps({"label": look_at_camera(1.57, 1.57)[0].tolist()}))
    rc = main(["--method", "pti", "--schedule", "published", "--image", str(tmp_path / "face.png"),
               "--camera", str(tmp_path / "cam.json"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "run"),
               "--projection-steps", "1", "--steps", "1", "--frames", "2", "--perceptual", "mse+ssim",
               "--no-progress", "--debug"])
    assert rc == 0
    options = json.loads((tmp_path / "run" / "result.json").read_text())["options"]
    assert options["tuning"]["lr"] == 3e-4 and options["tuning"]["early_stop_lpips"] == 0.06  # PTI's published
    assert options["projection"]["steps"] == 1 and options["tuning"]["steps"] == 1
