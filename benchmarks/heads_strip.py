"""Picture strip of procedural heads: rows = heads (seeds), columns = yaws -45..45 degrees.

    python benchmarks/heads_strip.py [--out benchmarks/results/heads-2026-11-24.png]
        [--seeds 0 1 2 3] [--accessories-seed 1000] [--resolution 128]

The last row is an out-of-distribution head (``sample_head(seed, accessories=True)``). Also prints
the render time per view.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import imageio.v3 as iio
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from inversion.data.heads import render_head, sample_head, yaw_cameras  # noqa: E402

YAWS = (-45.0, -22.5, 0.0, 22.5, 45.0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "heads-2026-11-24.png"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--accessories-seed", type=int, default=1000)
    ap.add_argument("--resolution", type=int, default=128)
    args = ap.parse_args(argv)
    heads = [sample_head(s) for s in args.seeds] + [sample_head(args.accessories_seed, accessories=True)]
    cams = yaw_cameras(YAWS)
    rows, t0 = [], time.perf_counter()
    for p in heads:
        out = render_head(p, cams, args.resolution)
        img = ((out["rgb"].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (V, 3, H, W)
        rows.append(torch.cat(list(img.permute(0, 2, 3, 1)), dim=1))          # (H, V*W, 3)
    dt = (time.perf_counter() - t0) / (len(heads) * len(YAWS))
    strip = torch.cat(rows, dim=0).numpy()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    iio.imwrite(args.out, np.ascontiguousarray(strip))
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KB): {len(heads)} heads x yaws {YAWS}; "
          f"{dt * 1e3:.0f} ms per {args.resolution}x{args.resolution} view")


if __name__ == "__main__":
    main()
