"""Measure a head family's alignment convention: where the canonical face mesh sits in its world,
and the detector's pose bias on it.

    python -m inversion.align.calibrate [--seeds 0 1 2 3 4 5] [--bias-heads 20] [--resolution 256]

For the embedded default generator (trained on procedural heads, inversion.data.heads):

1. Placement: render training heads at known cameras (yaw within +-15 degrees, elevation -15, 0,
   15), detect the landmarks, lift each to 3D with the rendered depth, and fit world =
   world_per_cm * mesh + mesh_origin (axes kept: the mesh's axes are the world's, as for FFHQ) by
   least squares over the per-landmark medians.
2. Detector bias: render every training head at random cameras (yaw in +-45, elevation in +-15,
   a random expression), measure yaw and elevation through the full path (detector, fit, label),
   and fit the bias polynomials of convention.py to measured - true (robust least squares).

Prints the ``alignment`` entry of the generator's JSON config.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ..data.heads import PROCEDURAL_HEADS_ALIGNMENT
from .convention import Convention, bias_terms, camera_from_angles
from .pose import canonical_mesh, fit_pose, fitting_vertices

# The result for the default generator's head family (measured by this script; the data module
# keeps it, the training script writes it into the shipped generator's JSON).
PROCEDURAL_HEADS = PROCEDURAL_HEADS_ALIGNMENT


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


def fit_angle_bias(measured: np.ndarray, true: np.ndarray, iterations: int = 10,
                   huber: float = 1.5) -> tuple[list, list]:
    """Bias polynomials (convention.py) from angles (N, 2) = (yaw, elevation) degrees measured by
    the detector and the true ones: robust (Huber re-weighted) least squares of measured - true.
    Returns (yaw_bias [2], elevation_bias [4])."""
    measured, true = np.asarray(measured, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if measured.ndim != 2 or measured.shape[1] != 2 or measured.shape != true.shape:
        raise ValueError(f"measured and true must both be (N, 2), got {measured.shape} and {true.shape}")
    if len(measured) < 8:
        raise ValueError(f"need at least 8 measurements to fit the bias, got {len(measured)}")
    terms = bias_terms(measured[:, 0], measured[:, 1])
    out = []
    for k, A in enumerate(terms):
        r = measured[:, k] - true[:, k]
        w = np.ones(len(r))
        for _ in range(iterations):
            sw = np.sqrt(w)
            coef, *_ = np.linalg.lstsq(A * sw[:, None], r * sw, rcond=None)
            res = np.abs(A @ coef - r)
            w = np.minimum(1.0, huber * (1.4826 * np.median(res) + 1e-9) / np.maximum(res, 1e-12))
        out.append([round(float(c), 4) for c in coef])
    return out[0], out[1]


def calibrate_angle_bias(convention: Convention, heads: int = 20, views_per_head: int = 8,
                         resolution: int = 256, seed: int = 12345) -> tuple[list, list]:
    """Measure the detector's bias on training heads 0..heads-1 (random cameras, see the module
    docstring) under ``convention`` (its own bias, if any, is ignored)."""
    from inversion.data.heads import render_head, sample_head
    from inversion.outputs import to_uint8

    from .detect import FaceDetector
    plain = convention.without_bias()
    rng = np.random.default_rng(seed)
    measured, true = [], []
    with FaceDetector() as det:
        for head in range(heads):
            views = [(rng.uniform(-45, 45), rng.uniform(-15, 15)) for _ in range(views_per_head)]
            expression = float(rng.uniform(0.0, 0.6))
            cams = torch.stack([camera_from_angles(y, e, plain) for y, e in views])
            rgb = render_head(sample_head(head, expression=expression), cams, resolution)["rgb"]
            for k, view in enumerate(views):
                faces = det.landmarks(to_uint8(rgb[k]))
                if faces:
                    cam = plain.camera(fit_pose(faces[0]))
                    measured.append((cam["yaw"], cam["elevation"]))
                    true.append(view)
    print(f"bias measured on {len(measured)} of {heads * views_per_head} renders (the others: no face)")
    return fit_angle_bias(np.array(measured), np.array(true))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5], help="heads for the placement")
    ap.add_argument("--bias-heads", type=int, default=20, help="heads 0..N-1 for the detector bias")
    ap.add_argument("--resolution", type=int, default=256)
    args = ap.parse_args(argv)
    conv = calibrate_procedural(tuple(args.seeds), args.resolution)
    conv["yaw_bias"], conv["elevation_bias"] = calibrate_angle_bias(
        Convention.from_dict(conv), args.bias_heads, resolution=args.resolution)
    print(json.dumps(conv, indent=1))


if __name__ == "__main__":
    main()
