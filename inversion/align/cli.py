"""``nerfgan-align``: photos or a video -> aligned crops, masks, EG3D labels, overlays.

    nerfgan-align PHOTO [PHOTO ...] --out DIR [--checkpoint default|G.pkl|G.safetensors]
    nerfgan-align --video FILE [--frames 8] [--smooth 1.0] --out DIR

Writes DIR/NAME.png (crops at the generator's resolution), DIR/masks/NAME.png,
DIR/overlays/NAME.jpg (landmarks, head axes, crop box), DIR/dataset.json (EG3D labels) and
DIR/alignment.json (angles, crop boxes, warnings, errors). ``nerfgan-invert --images DIR`` reads
the folder as it is. Without ``--checkpoint`` the crops follow EG3D's FFHQ convention at 512 px.
Exit code 1 when some files failed (each is named with its reason; the others are written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .convention import Convention
from .pipeline import Aligner, write_aligned


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nerfgan-align", description=__doc__.split("\n")[0])
    p.add_argument("photos", nargs="*", help="PNG/JPEG photos")
    p.add_argument("--video", default=None, help="a video file (frames sampled evenly through imageio)")
    p.add_argument("--frames", type=int, default=8, help="frames sampled from --video")
    p.add_argument("--smooth", type=float, default=1.0, help="--video: Gaussian smoothing of the poses "
                   "over time, in frames (0: off)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint", default=None, help="generator whose resolution and alignment "
                   "convention to follow ('default', .pkl, .safetensors); default: FFHQ at --resolution")
    p.add_argument("--resolution", type=int, default=512, help="crop size without --checkpoint")
    p.add_argument("--min-face", type=float, default=64.0, help="smallest accepted crop side (pixels)")
    args = p.parse_args(argv)
    if bool(args.photos) == (args.video is not None):
        p.error("give photos or --video (one of them)")
    return args


def aligner_for(checkpoint: str | None, resolution: int = 512, **kwargs) -> Aligner:
    if checkpoint is None:
        return Aligner(resolution, Convention(), **kwargs)
    from nerfgan_kernels.models import load_generator
    return Aligner.for_generator(load_generator(checkpoint), **kwargs)


def main(argv=None) -> int:
    args = parse_args(argv)
    aligner = aligner_for(args.checkpoint, args.resolution, min_face=args.min_face)
    try:
        if args.video is not None:
            aligned, errors = aligner.align_video(args.video, args.frames, args.smooth)
        else:
            aligned, errors = aligner.align_files(args.photos)
    finally:
        aligner.close()
    out = write_aligned(args.out, aligned, errors, aligner.convention)
    for a in aligned:
        m = a.measurement
        print(f"{a.name}: yaw {m.yaw:+.1f}, elevation {m.elevation:+.1f}, roll removed {m.roll:+.1f} deg"
              + "".join(f" (warning: {w})" for w in m.warnings))
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    print(f"{len(aligned)} aligned, {len(errors)} failed; outputs in {Path(out).resolve()}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
