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


def test_resume_may_change_views_but_not_the_items(tmp_path):
    out = str(tmp_path / "run")
    i = TINY.index("--views")
    base = TINY[:i] + TINY[i + 2:]  # without "--views 2"
    train_default.main(["--out", out, "--steps", "1", "--views", "2", *base])
    res = train_default.main(["--out", out, "--steps", "2", "--resume", "--views", "3", *base])
    assert res["steps"] == 2
    cache = torch.load(tmp_path / "run" / "views.pt", weights_only=True)
    assert cache["data"]["c"].shape[:2] == (1, 3)  # the views cache was re-rendered for 3 cameras
    summary = json.loads((tmp_path / "run" / "generator.json").read_text())["training"]
    assert [r["views"] for r in summary["runs"]] == [2, 3]
    with pytest.raises(ValueError, match="heads=1"):
        train_default.main(["--out", out, "--steps", "3", "--resume", "--views", "3", *base, "--heads", "2"])


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
    with pytest.raises(ValueError, match="ema_half_life"):
        train_default.TrainConfig(ema_half_life=-1.0).check()


def test_ema_of_weights_and_codes_is_checkpointed_and_shipped(tmp_path):
    ema = ["--ema-half-life", "2", "--checkpoint-every", "1", *TINY]
    cfg = train_default.parse_args(["--out", str(tmp_path / "t"), *ema])[1]
    trainer = train_default.Trainer(cfg, tmp_path / "t", progress=False)
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    codes_before = trainer.latents.detach().clone()
    trainer.step()
    beta = 0.5 ** 0.5
    after = trainer.G.state_dict()
    moved = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert moved  # the step changed weights, so the average lies strictly between
    for k in moved:
        torch.testing.assert_close(trainer.ema["G"][k], beta * before[k] + (1 - beta) * after[k])
    torch.testing.assert_close(trainer.ema["latents"], beta * codes_before + (1 - beta) * trainer.latents.detach())
    # Interrupted + resumed equals uninterrupted, and the saved generator is the EMA, not the weights.
    train_default.main(["--out", str(tmp_path / "a"), "--steps", "2", *ema])
    resumed = train_default.main(["--out", str(tmp_path / "a"), "--steps", "3", "--resume", *ema])
    straight = train_default.main(["--out", str(tmp_path / "b"), "--steps", "3", *ema])
    assert straight["history"] == resumed["history"]
    ckpt = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    shipped = load_generator(straight["generator"]).state_dict()
    again = load_generator(resumed["generator"]).state_dict()
    name = "backbone.synthesis.b256.torgb.weight"
    torch.testing.assert_close(shipped[name], again[name])
    torch.testing.assert_close(shipped[name], ckpt["ema_G"][name], atol=1e-3, rtol=1e-3)  # float16 file
    assert not torch.allclose(ckpt["ema_G"][name], ckpt["G"][name], atol=1e-3, rtol=1e-3)
