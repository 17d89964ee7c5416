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
            "--checkpoint", str(ckpt), "--out", str(tmp_path / "run"), "--perceptual", "none", "--schedule", schedule]
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
