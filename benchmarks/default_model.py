"""How good is the embedded default generator? Scores against its training heads' exact renders.

    python benchmarks/default_model.py [--checkpoint default] [--train-dir DIR] [--projection-steps 200]
        [--out benchmarks/results/default-model-<date>.md] [--strip benchmarks/results/default-model-<date>.png]

1. Held-out views of the training heads: every training item (head seed, expression) rendered by
   the generator from its latent at 6 cameras that were not among its training views (yaw
   -40..40 degrees, pitch +-8), against ``render_head`` at 128x128: PSNR, SSIM, foreground depth
   MAE. Latent: the shipped mapping network's ``mapping(item_z(i))``; with ``--train-dir`` (the
   training folder, holding checkpoint.pt) also the auto-decoder's own codes w_i.
2. Projection of training heads: W and W+ projection (``--projection-steps``) of the training items
   ``--projection-items`` (default 0, 10, 20, 30: heads 0, 5, 10, 15 at expression 0; head 0 is the
   hardest) from a single yaw +20 degree view (not a training view); input-view PSNR and held-out
   views per item, and their mean.
3. A picture strip: per head (4 training items), ground truth above the generator, yaw -45..45.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import imageio.v3 as iio
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit  # noqa: E402

from inversion import Target  # noqa: E402
from inversion.data.heads import render_head, sample_head, yaw_cameras  # noqa: E402
from inversion.data.train_default import HELD_OUT_VIEWS, held_out_cameras, item_z  # noqa: E402
from inversion.evaluation import score_views  # noqa: E402
from inversion.loop import LoopConfig  # noqa: E402
from inversion.losses import ImageLoss  # noqa: E402
from inversion.outputs import to_uint8  # noqa: E402
from inversion.projection import project  # noqa: E402
from nerfgan_kernels.models import load_generator  # noqa: E402
from nerfgan_kernels.models.checkpoint import DEFAULT_MODEL_DIR, config_path_for  # noqa: E402

STRIP_YAWS = (-45.0, -22.5, 0.0, 22.5, 45.0)


def training_items(G_config: dict) -> list:
    return [tuple(x) for x in G_config["training"]["items"]]


def main(argv=None) -> dict:
    today = datetime.date.today().isoformat()
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--train-dir", default=None)
    ap.add_argument("--projection-steps", type=int, default=200)
    ap.add_argument("--projection-items", type=int, nargs="+", default=[0, 10, 20, 30],
                    help="training item indices to project (item 2k is head k at expression 0)")
    ap.add_argument("--out", default=os.path.join(results, f"default-model-{today}.md"))
    ap.add_argument("--strip", default=os.path.join(results, f"default-model-{today}.png"))
    args = ap.parse_args(argv)
    G = load_generator(args.checkpoint)
    weights = DEFAULT_MODEL_DIR / "generator.safetensors" if args.checkpoint == "default" else args.checkpoint
    config = json.loads(config_path_for(weights).read_text())
    items = training_items(config)
    cams = held_out_cameras()
    c0 = torch.zeros(1, 25)
    sources = {"mapping(z_i)": lambda i: G.mapping(item_z(i, G.z_dim)[None], c0)}
    if args.train_dir:
        ckpt = torch.load(os.path.join(args.train_dir, "checkpoint.pt"), weights_only=True)
        codes = ckpt.get("ema_latents", ckpt["latents"])  # the shipped codes are the EMA when kept
        sources["trained w_i"] = lambda i: codes[i].view(1, 1, -1).expand(1, G.num_ws, -1)
    truths = [render_head(sample_head(seed, expression=expr), cams, G.img_resolution) for seed, expr in items]
    rows = []
    for name, source in sources.items():
        per = {"psnr": [], "ssim": [], "depth": []}
        for i, truth in enumerate(truths):
            with torch.no_grad():
                s = score_views(G, source(i), truth, cams)
            per["psnr"].append(s["mean_psnr"])
            per["ssim"].append(s["mean_ssim"])
            per["depth"].append(s["mean_depth_mae"])
        rows.append({"latent": name, "items": len(items), "views/item": len(cams),
                     "mean PSNR": float(np.mean(per["psnr"])), "min item PSNR": float(np.min(per["psnr"])),
                     "mean SSIM": float(np.mean(per["ssim"])), "depth MAE": float(np.nanmean(per["depth"]))})
        print(rows[-1], flush=True)
    # projection of training items from one view each
    cam = yaw_cameras([20.0])
    heads = {i: sample_head(items[i][0], expression=items[i][1]) for i in args.projection_items}
    targets = {i: render_head(h, cam, G.img_resolution)["rgb"] for i, h in heads.items()}
    proj_rows = []
    for mode in ("w", "wplus"):
        scores = []
        for i in args.projection_items:
            seed, expr = items[i]
            proj = project(G, Target(targets[i], cam), mode=mode, steps=args.projection_steps,
                           loss=ImageLoss(1.0, 1.0, "mse+ssim"), loop=LoopConfig(steps=0, progress=False))
            held = score_views(G, proj.ws, truths[i], cams)  # the held-out views rendered above
            scores.append((proj.metrics["psnr"], held["mean_psnr"], held["mean_depth_mae"]))
            proj_rows.append({"target": f"training head {seed}, expression {expr}, yaw +20", "latent": mode,
                              "steps": args.projection_steps, "input PSNR": scores[-1][0],
                              "held-out PSNR": scores[-1][1], "held-out depth MAE": scores[-1][2]})
            print(proj_rows[-1], flush=True)
        mean = np.mean(np.array(scores), axis=0)
        proj_rows.append({"target": f"mean of the {len(scores)} above", "latent": mode,
                          "steps": args.projection_steps, "input PSNR": float(mean[0]),
                          "held-out PSNR": float(mean[1]), "held-out depth MAE": float(mean[2])})
        print(proj_rows[-1], flush=True)
    # strip
    strip_rows = []
    with torch.no_grad():
        sc = yaw_cameras(list(STRIP_YAWS))
        for i in range(min(4, len(items))):
            seed, expr = items[i * max(1, len(items) // 4)]
            idx = items.index((seed, expr))
            truth = render_head(sample_head(seed, expression=expr), sc, G.img_resolution)["rgb"]
            ws = sources["mapping(z_i)"](idx)
            gen = torch.cat([G.synthesis(ws, c[None])["image"] for c in sc])
            strip_rows.append(np.concatenate([to_uint8(x) for x in truth], axis=1))
            strip_rows.append(np.concatenate([to_uint8(x) for x in gen], axis=1))
    iio.imwrite(args.strip, np.concatenate(strip_rows, axis=0))
    if os.path.exists(args.out):
        os.remove(args.out)
    training = config["training"]
    notes = [f"Generator: {args.checkpoint} ({training['what']}; {training['steps']} steps, "
             f"{training['train_seconds'] / 60:.0f} min on this CPU). Held-out cameras (yaw, pitch deg): {list(HELD_OUT_VIEWS)}.",
             f"Picture strip: {os.path.basename(args.strip)} (pairs of rows: ground truth, generator; yaw "
             f"{list(STRIP_YAWS)})."]
    emit(f"Default generator: held-out views of its training heads ({today})", rows, [], args.out)
    emit("Projection of training heads (W and W+, single view, MSE + SSIM)", proj_rows, notes, args.out)
    return {"held_out": rows, "projection": proj_rows}


if __name__ == "__main__":
    main()
