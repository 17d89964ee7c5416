"""``nerfgan-batch``: invert a set of photos across processes, GPUs and machines with torchrun.

    nerfgan-batch --images DIR --method pti --out OUT [nerfgan-invert's run options]
    torchrun --nproc_per_node 4 -m inversion.batch --images DIR --method pti --out OUT
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        --max-restarts 3 -m inversion.batch --images DIR --method nerfinvertor --out OUT

Items: each PNG/JPEG in DIR (single-view methods), or each subfolder of DIR holding views
(multiview, multilatent, incremental). Cameras come from the ``dataset.json`` beside an item's
images (looked up by file name); photos without one are aligned (``nerfgan-align``'s pipeline, in
memory) by the rank that inverts them. Each item's seed comes from its name.

Work is handed out through the c10d store torchrun already runs: an atomic counter (``store.add``)
per restart round, so fast ranks take more items. The on-disk done markers decide what is left:
an item is inverted only if it has no ``done.json``; an item a dead rank left half done is taken
again after torchrun restarts the group (a new round, a new counter) and resumes from its step
checkpoints; a done item is never redone, and rerunning the command after a crash continues.

OUT holds ``items/<name>/`` (result, reconstruction, turntable, metrics.json, report.md, its
checkpoints, and ``done.json`` written last: an item's outputs are complete when it exists),
``manifest.rank<N>.jsonl`` (each rank's own append-only log: one JSON object per item it
finished or failed), and at the end ``manifest.jsonl`` (merged: the last word on each item),
``summary.json``, ``report.md`` and ``contact_sheet.png`` (input | reconstruction | a novel view).
Bad items (unreadable, no face, not square) are recorded as failed with the reason; the batch
goes on.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .api import METHODS
from .cli import (IMAGE_SUFFIXES, add_run_options, invert_to_folder, load_run_target, report_errors,
                  set_geometry, set_memory_budget)
from .outputs import to_uint8

MULTI_VIEW = ("multiview", "multilatent", "incremental")
GROUP_TIMEOUT_S = 300  # connecting, and the final barrier (ranks still inverting an item wait at most this)


@dataclass(frozen=True)
class Item:
    """One inversion: ``name`` (the photo's file name, or the folder's name), its image paths and
    the dataset.json beside them (None: the photos are aligned)."""

    name: str
    images: tuple[str, ...]
    camera: str | None


def discover_items(folder: str | os.PathLike, method: str) -> list[Item]:
    """The items of ``folder`` for ``method``, sorted by name (ValueError when there are none)."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--images must be a folder, got {str(root)!r}")

    def camera_in(d: Path):
        return str(d / "dataset.json") if (d / "dataset.json").exists() else None

    if method in MULTI_VIEW:
        items = [Item(d.name, tuple(sorted(str(p) for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)),
                      camera_in(d)) for d in sorted(root.iterdir()) if d.is_dir()]
        items = [i for i in items if i.images]
    else:
        items = [Item(p.name, (str(p),), camera_in(root)) for p in sorted(root.iterdir())
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        kind = "subfolders of views" if method in MULTI_VIEW else "PNG/JPEG files"
        raise ValueError(f"--images {root}: no {kind} to invert")
    return items


def item_seed(name: str, base: int = 0) -> int:
    """The seed of an item: from its name (and --seed), never from the rank or the order."""
    return (int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) + base) % 2 ** 31


class Workers:
    """The process group torchrun set up (or a single process without it): rank, world size,
    device, and the claims of items through the store's counter."""

    def __init__(self, device: str):
        self.distributed = "WORLD_SIZE" in os.environ and "RANK" in os.environ
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.round = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        self.run_id = os.environ.get("TORCHELASTIC_RUN_ID", "local")
        if device in ("cuda", "auto") and torch.cuda.is_available():
            self.device = f"cuda:{self.local_rank}"
            torch.cuda.set_device(self.local_rank)
        else:
            self.device = "cpu"
        self.store = None
        if self.distributed:
            # a bounded timeout: a group that cannot connect or meet fails, and torchrun restarts it
            dist.init_process_group("nccl" if self.device.startswith("cuda") else "gloo", init_method="env://",
                                    timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S))
            # torchrun's store (the one its rendezvous uses), shared by every rank of the job
            self.store = dist.distributed_c10d._get_default_store()

    def claims(self, n: int):
        """Item indices for this rank: from the round's atomic counter (every index goes to exactly
        one rank of the round), or 0..n-1 in a single process."""
        if self.store is None:
            yield from range(n)
            return
        key = f"nerfgan-batch/{self.run_id}/round{self.round}/next"
        while (i := self.store.add(key, 1) - 1) < n:
            yield i

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed:
            dist.destroy_process_group()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nerfgan-batch", description=__doc__.split("\n")[0])
    p.add_argument("--images", required=True, help="folder of photos (or of view subfolders)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--out", required=True, help="output folder (rerun the command to resume)")
    p.add_argument("--log-every", type=int, default=1, help="a JSON line per this many items per rank (0: none)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    add_run_options(p)
    return p.parse_args(argv)


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def invert_item(item: Item, args, G, base_state: dict, out: Path, rank: int) -> dict:
    """Invert one item into OUT/items/<name>/ from the base generator; -> its manifest record."""
    import imageio.v2 as imageio
    folder = out / "items" / item.name
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    record = {"item": item.name, "rank": rank}
    try:
        with torch.no_grad():
            G.load_state_dict(base_state)
        item_args = argparse.Namespace(**{**vars(args), "image": list(item.images), "camera": item.camera,
                                          "video": None, "video_frames": 8, "mask": None,
                                          "seed": item_seed(item.name, args.seed), "no_progress": True})
        target = load_run_target(item_args, G, folder)
        imageio.imwrite(folder / "input.png", to_uint8(target.images[0]))
        metrics = invert_to_folder(item_args, G, target, folder, t0)
        record.update(status="done", seconds=time.perf_counter() - t0, metrics={
            "input_psnr": metrics["input_view"]["psnr"], "input_ssim": metrics["input_view"]["ssim"]})
        _atomic_json(folder / "done.json", record)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a bad item is recorded, never fatal
        record.update(status="failed", seconds=time.perf_counter() - t0,
                      error=f"{type(e).__name__}: {e}" if not isinstance(e, SystemExit) else str(e))
    record["time"] = time.time()
    return record


def merge_manifests(out: Path, items: list[Item]) -> list[dict]:
    """OUT/manifest.jsonl: the last word on each item over every rank's manifest (a done marker
    on disk is the word), items never reached as 'skipped'."""
    last: dict[str, dict] = {}
    for path in sorted(out.glob("manifest.rank*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r["item"] not in last or r["time"] >= last[r["item"]]["time"]:
                    last[r["item"]] = r
    rows = []
    for item in items:
        done = out / "items" / item.name / "done.json"
        rows.append(json.loads(done.read_text()) if done.exists()
                    else last.get(item.name, {"item": item.name, "status": "skipped", "rank": None, "seconds": 0.0}))
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def write_summary(out: Path, rows: list[dict], args) -> None:
    """summary.json, report.md (a table of every item) and contact_sheet.png."""
    import imageio.v2 as imageio
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "skipped")}
    done = [r for r in rows if r["status"] == "done"]
    summary = {"method": args.method, "items": len(rows), **counts,
               "seconds": sum(r.get("seconds") or 0.0 for r in rows),
               "mean_input_psnr": float(np.mean([r["metrics"]["input_psnr"] for r in done])) if done else None}
    _atomic_json(out / "summary.json", summary)
    lines = [f"# nerfgan-batch: {args.method}, {len(rows)} items", "",
             f"{counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped.", "",
             "| item | status | rank | seconds | input PSNR / error |", "|---|---|---|---|---|"]
    for r in rows:
        what = f"{r['metrics']['input_psnr']:.2f} dB" if r["status"] == "done" else r.get("error", "")
        lines.append(f"| {r['item']} | {r['status']} | {r.get('rank')} | {r.get('seconds') or 0:.1f} | {what} |")
    sheet = []
    for r in done:
        folder = out / "items" / r["item"]
        recon = imageio.imread(folder / "reconstruction.png")[..., :3]
        turntable = next(iter(sorted(folder.glob("turntable.*"))), None)
        frames = imageio.mimread(turntable) if turntable is not None else [recon]
        novel = np.asarray(frames[len(frames) // 4])[..., :3]
        source = imageio.imread(folder / "input.png")[..., :3] if (folder / "input.png").exists() else recon
        sheet.append(np.concatenate([_fit(source, recon.shape[0]), recon, _fit(novel, recon.shape[0])], axis=1))
    if sheet:
        width = max(s.shape[1] for s in sheet)
        sheet = [np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0))) for s in sheet]
        imageio.imwrite(out / "contact_sheet.png", np.concatenate(sheet, axis=0))
        lines += ["", "Contact sheet (input | reconstruction | a novel view):", "",
                  "![contact sheet](contact_sheet.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W, 3) picture to (size, size)."""
    rows = np.linspace(0, image.shape[0] - 1, size).round().astype(int)
    cols = np.linspace(0, image.shape[1] - 1, size).round().astype(int)
    return image[rows][:, cols]


def main(argv=None) -> int:
    args = parse_args(argv)
    return report_errors("nerfgan-batch", args, lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = discover_items(args.images, args.method)
    workers = Workers(args.device)
    args.device = workers.device
    try:
        from nerfgan_kernels.models import load_generator
        G = load_generator(args.checkpoint, device=workers.device)
        set_memory_budget(G, workers.device, args.max_memory)
        set_geometry(G, args.geometry)
        base_state = {k: v.clone() for k, v in G.state_dict().items()}
        manifest = out / f"manifest.rank{workers.rank}.jsonl"
        bar = tqdm(total=len(items), desc=f"rank {workers.rank}", position=workers.rank,
                   disable=args.no_progress, leave=True)
        finished = 0
        for i in workers.claims(len(items)):
            item = items[i]
            if (out / "items" / item.name / "done.json").exists():
                continue  # done in an earlier run or round: never redone
            record = invert_item(item, args, G, base_state, out, workers.rank)
            with manifest.open("a") as f:  # this rank's own file: no interleaved appends
                f.write(json.dumps(record) + "\n")
            finished += 1
            bar.update(1)
            if args.log_every and finished % args.log_every == 0:
                print(json.dumps(record), flush=True)
        bar.close()
        workers.barrier()
        if workers.rank == 0:
            rows = merge_manifests(out, items)
            write_summary(out, rows, args)
            counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "skipped")}
            print(f"{counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped; "
                  f"outputs in {out.resolve()} (manifest.jsonl, summary.json, report.md)")
    finally:
        workers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
