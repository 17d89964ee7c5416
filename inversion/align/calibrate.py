"""Measure a head family's alignment convention: where the canonical face mesh sits in its world.

    python -m inversion.align.calibrate [--seeds 0 1 2 3 4 5] [--resolution 256]

For the embedded default generator (trained on procedural heads, inversion.data.heads): render
training heads at known cameras (yaw within +-15 degrees, elevation -15, 0, 15), detect the
landmarks, lift each to 3D with the rendered depth, and fit world = world_per_cm * mesh +
mesh_origin (axes kept: the mesh's axes are the world's, as for FFHQ) by least squares over the
per-landmark medians. Prints the ``alignment`` entry of the generator's JSON config.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from .convention import Convention, camera_from_angles
from .pose import canonical_mesh, fitting_vertices

# The result for the default generator's head family (seeds 0-5, 256 px, 54 renders, 2026-11-24);
# the training script writes it into the shipped generator's JSON as its ``alignment``.
PROCEDURAL_HEADS = {"focal": 4.2647, "radius": 2.7, "pivot": [0.0, 0.0, 0.2], "world_per_cm": 0.022822,
                    "mesh_origin": [-0.002001, -0.054651, 0.091386],
                    "mesh_rotation": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                    "name": "procedural-heads"}


def lift_landmarks(landmarks: np.ndarray, camera: torch.Tensor, depth: np.ndarray) -> np.ndarray:
    """Landmarks (N, >=2) in pixels of a render -> world points (N, 3) using its depth map
    (res, res) (distance along the unit ray) and camera (25,); nearest-pixel depth."""
    from nerfgan_kernels.render import rays_from_matrices
    res = depth.shape[-1]
    c = camera.reshape(1, 25).float()
    origins, dirs = rays_from_matrices(c[:, :16].reshape(1, 4, 4), c[:, 16:].reshape(1, 3, 3), res)
    dirs = dirs[0].reshape(res, res, 3).numpy().astype(np.float64)
    j = np.clip(np.floor(landmarks[:, 0]).astype(int), 0, res - 1)
    i = np.clip(np.floor(landmarks[:, 1]).astype(int), 0, res - 1)
    return origins[0, 0].numpy() + depth[i, j, None] * dirs[i, j]


def calibrate_procedural(seeds=(0, 1, 2, 3, 4, 5), resolution: int = 256, expression: float = 0.3) -> dict:
    from inversion.data.heads import render_head, sample_head
    from inversion.outputs import to_uint8

    from .detect import FaceDetector
    views = [(y, e) for y in (-15, 0, 15) for e in (-15, 0, 15)]
    cams = torch.stack([camera_from_angles(y, e) for y, e in views])
    lifted = []
    with FaceDetector() as det:
        for seed in seeds:
            r = render_head(sample_head(seed, expression=expression), cams, resolution)
            for k in range(len(views)):
                img = to_uint8(r["rgb"][k])
                faces = det.landmarks(img)
                if faces:
                    lifted.append(lift_landmarks(faces[0][:468], cams[k], r["depth"][k, 0].numpy()))
    if not lifted:
        raise RuntimeError("no face found in any calibration render")
    world = np.median(np.stack(lifted), axis=0)                  # (468, 3)
    idx = fitting_vertices()
    mesh = canonical_mesh()[0][idx]
    a, b = mesh - mesh.mean(0), world[idx] - world[idx].mean(0)
    scale = float((a * b).sum() / (a * a).sum())
    origin = world[idx].mean(0) - scale * mesh.mean(0)
    conv = Convention(world_per_cm=round(scale, 6), mesh_origin=tuple(round(float(v), 6) for v in origin),
                      name="procedural-heads")
    print(f"calibrated on {len(lifted)} renders with a detected face")
    return conv.to_dict()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--resolution", type=int, default=256)
    args = ap.parse_args(argv)
    print(json.dumps(calibrate_procedural(tuple(args.seeds), args.resolution), indent=1))


if __name__ == "__main__":
    main()
