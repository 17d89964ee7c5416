"""benchmarks/time_to_quality.py on a tiny generator and tiny schedules: every contender's points
are measured once, interleaved, a run stopped by its budget resumes where it was (checkpoints and
curve), times only grow along a curve, and the report (table, headline, plot) is written."""

import json
import sys
from pathlib import Path

import torch

from nerfgan_kernels.models import build_generator, save_generator
from test_inversion_acceptance import tiny_triplane_kwargs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import time_to_quality as ttq  # noqa: E402

TINY = {"projection_steps": 3, "tuning_steps": 2}
TINY_NI = {"explicit_resolution": 4, "explicit_samples": 6}


def test_points_follow_the_schedule():
    assert ttq.points({"projection_steps": 30, "tuning_steps": 12}) == [
        ("projection", 10), ("projection", 25), ("projection", 30), ("tuning", 5), ("tuning", 10), ("tuning", 12)]
    assert ttq.points({"projection_steps": 500})[-1] == ("projection", 500)


def test_reached_needs_all_three_metrics():
    goal = {"input_psnr": 25.0, "heldout_psnr": 20.0, "heldout_depth_mae": 0.02}
    curve = [{"input_psnr": 26.0, "heldout_psnr": 19.0, "heldout_depth_mae": 0.01},   # held-out too low
             {"input_psnr": 24.9, "heldout_psnr": 19.9, "heldout_depth_mae": 0.03},   # depth worse
             {"input_psnr": 24.85, "heldout_psnr": 19.85, "heldout_depth_mae": 0.02}]
    assert ttq.reached(curve, goal) is curve[2]
    assert ttq.reached(curve[:2], goal) is None


def test_a_tiny_run_measures_every_point_once_and_resumes(tmp_path):
    torch.manual_seed(0)
    ckpt = save_generator(build_generator(tiny_triplane_kwargs(), 32), tmp_path / "tiny.safetensors")
    overrides = {"nerfinvertor-published": {**TINY, "tuning_options": TINY_NI},
                 "pti-published": TINY, "fast": {**TINY, "tuning_options": {**TINY_NI, "masked": True}}}
    argv = ["--heads", "5000", "--no-mesh", "--checkpoint", str(ckpt), "--work", str(tmp_path / "work"),
            "--out-dir", str(tmp_path / "out"), "--overrides", json.dumps(overrides)]
    ttq.main(argv + ["--budget-hours", "0"])           # stops before the first point
    curves = tmp_path / "work" / "curves.jsonl"
    assert not curves.exists() or curves.read_text() == ""
    ttq.main(argv)
    records = [json.loads(line) for line in curves.read_text().splitlines()]
    per = {name: [r for r in records if r["contender"] == name] for name in ttq.CONTENDERS}
    for name, rs in per.items():
        assert [(r["stage"], r["step"]) for r in rs] == [("projection", 3), ("tuning", 2)], name
        assert 0 < rs[0]["cpu_seconds"] <= rs[1]["cpu_seconds"] and rs[0]["wall_seconds"] <= rs[1]["wall_seconds"]
        assert all(bool(torch.isfinite(torch.tensor([r["input_psnr"], r["heldout_psnr"], r["heldout_depth_mae"]])).all())
                   for r in rs)
    assert [r["contender"] for r in records[:3]] == list(ttq.CONTENDERS)   # interleaved
    # the published schedules share one projection: measured once, their tunings start from it
    assert records[0]["cpu_seconds"] == records[1]["cpu_seconds"] != records[2]["cpu_seconds"]
    assert len(list((tmp_path / "work").glob("projection-*"))) == 2
    ttq.main(argv)                                                            # nothing left to do
    assert len(curves.read_text().splitlines()) == len(records)
    md = next((tmp_path / "out").glob("time-to-quality-*.md")).read_text()
    assert "nerfinvertor-published" in md and "fast" in md and ("reaches" in md or "does not reach" in md)
    assert list((tmp_path / "out").glob("time-to-quality-*.png"))
