"""nerfgan-batch on torchrun (gloo, 2 processes, one thread each): five tiny items of which one is
unreadable; dynamic assignment through the store; a worker SIGKILLed from outside mid-item; the
results equal one-process runs of the same items."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch
from safetensors.torch import load_file

from inversion.batch import discover_items, item_seed, merge_manifests
from inversion.data.heads import render_head, sample_head, yaw_cameras
from inversion.outputs import to_uint8

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
RUN = ["--method", "pti", "--fast", "--projection-steps", "6", "--steps", "3", "--frames", "2",
       "--checkpoint-every", "2", "--perceptual", "mse+ssim", "--threads", "1", "--no-progress"]
YAWS = {7001: -20.0, 7002: 0.0, 7003: 15.0, 7004: 30.0}
# loopback only; torchrun restarts a group whose gloo mesh failed to connect on a loaded machine
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "GLOO_SOCKET_IFNAME": "lo"}


def make_items(folder: Path, seeds=(7001, 7002, 7003, 7004)) -> None:
    """Renders of procedural heads with their cameras in a dataset.json, and one unreadable file."""
    folder.mkdir(parents=True)
    cams = yaw_cameras([YAWS[s] for s in seeds])  # each head seen from its own yaw, whatever the folder
    labels = []
    for seed, cam in zip(seeds, cams):
        image = render_head(sample_head(seed, expression=0.3), cam[None], 128)["rgb"][0]
        iio.imwrite(folder / f"head{seed}.png", to_uint8(image))
        labels.append([f"head{seed}.png", cam.tolist()])
    (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
    (folder / "broken.png").write_bytes(b"not a png at all")


def torchrun(images: Path, out: Path, *extra, wait=True):
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "--max-restarts", "3", *extra, "-m", "inversion.batch",
           "--images", str(images), "--out", str(out), *RUN]
    if not wait:  # the log goes to a file: a pipe nobody reads while the test polls could fill and block
        log = open(out.parent / "torchrun.log", "w")
        return subprocess.Popen(cmd, env=ENV, stdout=log, stderr=subprocess.STDOUT, text=True)
    run = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def records(out: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(out.glob("manifest.rank*.jsonl")) for line in p.read_text().splitlines()]


def test_items_and_seeds(tmp_path):
    make_items(tmp_path / "photos", seeds=(7001,))
    (tmp_path / "photos" / "notes.txt").write_text("ignored")
    items = discover_items(tmp_path / "photos", "pti")
    assert [i.name for i in items] == ["broken.png", "head7001.png"]
    assert items[1].camera == str(tmp_path / "photos" / "dataset.json")
    assert item_seed("head7001.png") == item_seed("head7001.png") != item_seed("head7002.png")
    with pytest.raises(ValueError, match="no subfolders of views"):
        discover_items(tmp_path / "photos", "multiview")
    # an item never reached is reported as skipped; a done marker is the last word
    rows = merge_manifests(tmp_path, items)
    assert [r["status"] for r in rows] == ["skipped", "skipped"]


def test_torchrun_two_ranks_bad_item_and_rerun(tmp_path):
    make_items(tmp_path / "photos")
    out = tmp_path / "out"
    torchrun(tmp_path / "photos", out)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    status = {r["item"]: r["status"] for r in rows}
    assert status == {"broken.png": "failed", **{f"head{s}.png": "done" for s in (7001, 7002, 7003, 7004)}}
    broken = next(r for r in rows if r["item"] == "broken.png")
    assert "broken.png" in broken["error"]
    done = [r for r in records(out) if r["status"] == "done"]
    assert sorted(r["item"] for r in done) == sorted(f"head{s}.png" for s in (7001, 7002, 7003, 7004))  # once each
    assert {r["rank"] for r in records(out)} <= {0, 1}
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["done"], summary["failed"], summary["skipped"]) == (4, 1, 0)
    assert (out / "contact_sheet.png").exists() and "broken.png" in (out / "report.md").read_text()
    for s in (7001, 7002, 7003, 7004):
        assert (out / "items" / f"head{s}.png" / "metrics.json").exists()
    # the same command again redoes nothing
    torchrun(tmp_path / "photos", out)
    assert len([r for r in records(out) if r["status"] == "done"]) == 4
    # each result equals a one-process run of that item at the same thread count
    single = tmp_path / "single"
    make_items(single, seeds=(7003,))
    (single / "broken.png").unlink()
    run = subprocess.run([sys.executable, "-m", "inversion.batch", "--images", str(single), "--out",
                          str(tmp_path / "out1"), *RUN], env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    a = load_file(str(out / "items" / "head7003.png" / "result.safetensors"))
    b = load_file(str(tmp_path / "out1" / "items" / "head7003.png" / "result.safetensors"))
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


def _worker_with_open_log(parent: int, log: Path) -> int | None:
    """The pid of the torchrun worker (a child of ``parent``) that has ``log`` open."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[1]) != parent:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(log):
                    return int(pid)
        except (OSError, IndexError, ValueError):
            continue
    return None


@pytest.mark.skipif(os.environ.get("NERFGAN_TEST_TORCHRUN_KILL") != "1",
                    reason="opt-in (NERFGAN_TEST_TORCHRUN_KILL=1): the restarted group intermittently hangs "
                           "after the kill (seen in CI and locally, about 1 run in 3), not yet diagnosed")
def test_a_worker_killed_mid_item_is_restarted_and_the_item_resumes(tmp_path):
    make_items(tmp_path / "photos")
    out = tmp_path / "out"
    proc = torchrun(tmp_path / "photos", out, wait=False)
    killed = None
    try:
        deadline = time.time() + 300
        while killed is None and time.time() < deadline and proc.poll() is None:
            for ckpt in out.glob("items/*/checkpoints/projection.pt"):  # an item's first checkpoint
                pid = _worker_with_open_log(proc.pid, ckpt.with_suffix(".jsonl"))
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = ckpt.parent.parent.name
                    break
            time.sleep(0.05)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no worker was caught mid-item"
    assert proc.returncode == 0, (tmp_path / "torchrun.log").read_text()[-3000:]
    rows = {json.loads(line)["item"]: json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()}
    assert [rows[f"head{s}.png"]["status"] for s in (7001, 7002, 7003, 7004)] == ["done"] * 4
    assert rows["broken.png"]["status"] == "failed"
    assert sorted(r["item"] for r in records(out) if r["status"] == "done") == \
        sorted(f"head{s}.png" for s in (7001, 7002, 7003, 7004))              # nothing done twice
    steps = []
    for line in (out / "items" / killed / "checkpoints" / "projection.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:  # the line the kill cut
            pass
    assert steps.count(0) == 1 and set(steps) == set(range(6)), steps        # resumed, not redone from 0
