"""``nerfgan-convert``: EG3D network pickle -> safetensors + JSON config, without running any code
from the pickle.

    nerfgan-convert network.pkl out/generator.safetensors [--network G_ema]
"""

from __future__ import annotations

import argparse
import sys

from .checkpoint import load_eg3d_pickle_generator, save_generator


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="nerfgan-convert", description=__doc__.splitlines()[0])
    ap.add_argument("pickle", help="EG3D network pickle (.pkl)")
    ap.add_argument("out", help="output .safetensors path (its .json config is written beside it)")
    ap.add_argument("--network", default="G_ema", help="which network of the snapshot (default G_ema)")
    args = ap.parse_args(argv)
    G = load_eg3d_pickle_generator(args.pickle, network=args.network)
    path = save_generator(G, args.out)
    n = sum(p.numel() for p in G.parameters())
    print(f"wrote {path} and {path.with_suffix('.json')} ({n:,} parameters, "
          f"neural rendering resolution {G.neural_rendering_resolution})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
