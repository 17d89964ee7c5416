"""Training script of the embedded default generator (inversion.data.train_default), tiny config."""

from __future__ import annotations

import json

import pytest
import torch

from inversion.data import train_default
from nerfgan_kernels.models import load_generator

TINY = ["--mapping-fit-steps", "20", "--preset", "tiny", "--heads", "1", "--expressions", "0.5", "--views", "2",
        "--items-per-step", "1", "--views-per-item", "2", "--no-progress"]


def test_checkpoint_resume_and_saved_generator(tmp_path):
    out = str(tmp_path / "run")
    first = train_default.main(["--out", out, "--steps", "2", "--checkpoint-every", "1", *TINY])
    assert first["steps"] == 2
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 2
    resumed = train_default.main(["--out", out, "--steps", "3", "--resume", *TINY])
    assert resumed["steps"] == 3 and len(resumed["history"]) == 3
    assert resumed["history"][:2] == first["history"]  # history carried over, not restarted
    G = load_generator(resumed["generator"])
    summary = json.loads((tmp_path / "run" / "generator.json").read_text())["training"]
    assert summary["steps"] == 3 and summary["items"] == [[0, 0.5]]
    z = train_default.item_z(0, G.z_dim)[None]
    c = train_default.item_cameras(0, train_default.TrainConfig(views=2))[:1]
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, c), c)["image"]
    assert img.shape == (1, 3, 128, 128) and torch.isfinite(img).all()
    # Resuming must continue exactly where an uninterrupted run would be.
    straight = train_default.main(["--out", str(tmp_path / "straight"), "--steps", "3", *TINY])
    assert straight["history"] == resumed["history"]


def test_loss_decreases(tmp_path):
    res = train_default.main(["--out", str(tmp_path), "--steps", "12", "--checkpoint-every", "100",
                              "--lr", "3e-3", *TINY])
    losses = [h["raw"] + h["sr"] for h in res["history"]]
    assert sum(losses[-3:]) / 3 < 0.75 * sum(losses[:3]) / 3, losses


def test_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="minutes"):
        train_default.main(["--out", str(tmp_path), *TINY])
    with pytest.raises(ValueError, match="views_per_item"):
        train_default.main(["--out", str(tmp_path), "--steps", "1", *TINY[:-3], "--views-per-item", "3"])
    with pytest.raises(ValueError, match="preset"):
        train_default.TrainConfig(preset="huge").check()
    with pytest.raises(ValueError, match="expressions"):
        train_default.TrainConfig(expressions=(2.0,)).check()
