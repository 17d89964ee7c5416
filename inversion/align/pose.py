"""Head pose from face landmarks: MediaPipe's canonical face mesh fitted to them.

The canonical mesh (``canonical_face_model.obj``, see NOTICE.md) has 468 vertices in the order of
MediaPipe's 468 face landmarks, in centimetres, +x to the subject's left (image right when seen
from the front), +y up, +z toward the viewer. A ``Pose`` maps mesh points X (cm) to photo
coordinates (OpenCV axes: x right, y down, z away from the camera, in pixels):

    p = scale * rotation @ X + translation        (a similarity: scaled orthographic projection)

so ``rotation`` (3, 3) is the head's orientation in the camera frame (mesh -> camera).

The fit is a weighted orthogonal Procrustes (Umeyama) between the mesh and the landmarks in 3D
(MediaPipe's x, y in pixels and its relative depth z, which uses the scale of x), re-weighted a few
times with Huber weights on the residuals (robust to landmarks that slide along the silhouette or
that the detector misplaces). The rim of the mesh (the face oval, whose landmarks follow the
silhouette rather than fixed points on the head) is left out. This was chosen by measurement
(tests/test_align.py::test_pose_accuracy_on_renders and the note of issue 8): on renders with known
cameras the 3D fit has lower yaw/pitch errors than a 2D weak-perspective fit of x, y only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MESH_PATH = Path(__file__).with_name("canonical_face_model.obj")
NUM_LANDMARKS = 468


@functools.lru_cache(maxsize=1)
def canonical_mesh() -> tuple[np.ndarray, np.ndarray]:
    """(vertices (468, 3) float64 cm, triangles (898, 3) int64, 0-based) of the canonical mesh."""
    verts, faces = [], []
    for line in MESH_PATH.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            verts.append([float(x) for x in parts[1:4]])
        elif parts[0] == "f":
            faces.append([int(p.split("/")[0]) - 1 for p in parts[1:4]])
    v, f = np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    if v.shape != (NUM_LANDMARKS, 3):
        raise ValueError(f"{MESH_PATH}: expected {NUM_LANDMARKS} vertices, got {v.shape[0]}")
    return v, f


@functools.lru_cache(maxsize=1)
def rim_vertices() -> np.ndarray:
    """Indices of the mesh's boundary vertices (edges used by a single triangle): the face oval."""
    _, faces = canonical_mesh()
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    return np.unique(uniq[counts == 1])


def fitting_vertices() -> np.ndarray:
    """Indices of the landmarks used by ``fit_pose``: all but the rim."""
    return np.setdiff1d(np.arange(NUM_LANDMARKS), rim_vertices())


@dataclass
class Pose:
    """p = scale * rotation @ X + translation (see the module docstring).

    scale: pixels per centimetre; rotation (3, 3) mesh -> camera (OpenCV axes); translation (3,)
    pixels; rms: root-mean-square residual of the fitted landmarks in pixels."""
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    rms: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """Mesh points (N, 3) cm -> photo pixels (N, 2)."""
        return (self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation)[:, :2]


def _umeyama(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted similarity dst ~ s R src + t (R proper). src, dst (N, 3); w (N,) >= 0."""
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    a, b = src - mu_s, dst - mu_d
    cov = (b * w[:, None]).T @ a
    U, S, Vt = np.linalg.svd(cov)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    R = U @ D @ Vt
    var = (w * (a ** 2).sum(1)).sum()
    s = float(np.trace(np.diag(S) @ D) / var)
    return s, R, mu_d - s * R @ mu_s


def _weak_perspective(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted scaled-orthographic fit of dst[:, :2] ~ s (R src)[:2] + t: a weighted affine fit,
    then the nearest scaled pair of orthonormal rows (SVD); row 3 = row 1 x row 2."""
    A = np.concatenate([src, np.ones((len(src), 1))], axis=1) * np.sqrt(w)[:, None]
    M, *_ = np.linalg.lstsq(A, dst[:, :2] * np.sqrt(w)[:, None], rcond=None)   # (4, 2)
    affine = M[:3].T                                                             # (2, 3)
    U, S, Vt = np.linalg.svd(affine, full_matrices=False)
    rows = U @ Vt
    R = np.vstack([rows, np.cross(rows[0], rows[1])])
    s = float(S.mean())
    t = np.zeros(3)
    t[:2] = M[3] + (affine - s * rows) @ (w @ src / w.sum())
    return s, R, t


def fit_pose(landmarks: np.ndarray, use_depth: bool = True, iterations: int = 6,
             huber: float = 1.5) -> Pose:
    """Fit the canonical mesh to landmarks (>= 468, 3) in pixels (x, y, and MediaPipe's relative
    depth z in x's pixel scale; extra rows such as the 10 iris points are ignored).

    use_depth: True for the 3D similarity fit (the default), False for the 2D scaled-orthographic
    fit of x, y only. ``iterations`` rounds of Huber re-weighting with threshold ``huber`` x the
    robust (MAD) residual scale."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] < NUM_LANDMARKS or landmarks.shape[1] != 3:
        raise ValueError(f"landmarks must be (>= {NUM_LANDMARKS}, 3) pixels, got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks must be finite")
    idx = fitting_vertices()
    src, dst = canonical_mesh()[0][idx], landmarks[idx]
    solve = _umeyama if use_depth else _weak_perspective
    w = np.ones(len(idx))
    for _ in range(iterations):
        s, R, t = solve(src, dst, w)
        pred = s * src @ R.T + t
        res = np.linalg.norm((pred - dst)[:, : 3 if use_depth else 2], axis=1)
        sigma = 1.4826 * np.median(res) + 1e-9
        w = np.minimum(1.0, huber * sigma / np.maximum(res, 1e-12))
    rms = float(np.sqrt(np.mean(res ** 2)))
    return Pose(scale=s, rotation=R, translation=t, rms=rms)
