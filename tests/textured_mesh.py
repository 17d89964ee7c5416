"""A small rasterizer for the alignment tests: MediaPipe's canonical face mesh wearing a photo.

Each mesh vertex i takes the photo's colour at ``uv[i]`` (for instance the photo's landmark i), so
a render shows that face on the mesh's exact geometry at any camera: renders with known cameras
and human-looking faces, for measuring the pose accuracy of the whole alignment path.
"""

from __future__ import annotations

import numpy as np
import torch

from inversion.align.convention import Convention
from inversion.align.pose import canonical_mesh


def _bilinear(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """texture (H, W, 3) float at pixel coordinates uv (N, 2) (pixel centres at +0.5) -> (N, 3)."""
    h, w = texture.shape[:2]
    x = np.clip(uv[:, 0] - 0.5, 0, w - 1.001)
    y = np.clip(uv[:, 1] - 0.5, 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return (texture[y0, x0] * (1 - fx) * (1 - fy) + texture[y0, x0 + 1] * fx * (1 - fy)
            + texture[y0 + 1, x0] * (1 - fx) * fy + texture[y0 + 1, x0 + 1] * fx * fy)


def mesh_in_camera(camera: torch.Tensor, convention: Convention | None = None) -> tuple[np.ndarray, float]:
    """The canonical mesh placed by ``convention`` (FFHQ's by default) in the frame of the EG3D
    camera (25,): points (468, 3) (x right, y down, z forward, world units) and the normalized focal."""
    conv = convention or Convention()
    c = torch.as_tensor(camera).double().numpy()
    cam2world, K = c[:16].reshape(4, 4), c[16:].reshape(3, 3)
    return (conv.mesh_to_world(canonical_mesh()[0]) - cam2world[:3, 3]) @ cam2world[:3, :3], float(K[0, 0])


def render_textured_mesh(camera: torch.Tensor, resolution: int, texture: np.ndarray, uv: np.ndarray,
                         convention: Convention | None = None, background=(140, 153, 166),
                         return_depth: bool = False):
    """The canonical mesh placed in the world by ``convention`` (FFHQ's by default), seen by the
    EG3D camera (25,), z-buffered, colours interpolated perspective-correctly from ``texture``
    (H, W, 3) uint8 at ``uv`` (468, 2) pixels. Returns (resolution, resolution, 3) uint8; with
    ``return_depth`` also the exact depth (resolution, resolution) float64 as the renderer
    measures it (distance along the unit ray from the camera; inf off the mesh) and the mask
    (resolution, resolution) bool."""
    faces = canonical_mesh()[1]
    pc, focal = mesh_in_camera(camera, convention)
    px = (pc[:, :2] / pc[:, 2:3] * focal + 0.5) * resolution
    image = np.empty((resolution, resolution, 3))
    image[:] = np.asarray(background, dtype=np.float64)
    zbuf = np.full((resolution, resolution), np.inf)
    tex = texture.astype(np.float64)
    for tri in faces:
        q = px[tri]
        lo = np.maximum(np.floor(q.min(0)).astype(int), 0)
        hi = np.minimum(np.ceil(q.max(0)).astype(int), resolution - 1)
        if (hi < lo).any():
            continue
        xs, ys = np.meshgrid(np.arange(lo[0], hi[0] + 1) + 0.5, np.arange(lo[1], hi[1] + 1) + 0.5)
        edges = np.array([q[1] - q[0], q[2] - q[0]]).T
        if abs(np.linalg.det(edges)) < 1e-12:
            continue
        b12 = np.linalg.solve(edges, np.stack([xs.ravel() - q[0, 0], ys.ravel() - q[0, 1]]))
        bary = np.stack([1 - b12.sum(0), b12[0], b12[1]])                     # (3, P) screen space
        inside = (bary >= -1e-9).all(0)
        inv_z = 1.0 / pc[tri, 2]
        z = 1.0 / (inv_z @ bary)
        rows, cols = (ys.ravel() - 0.5).astype(int), (xs.ravel() - 0.5).astype(int)
        keep = inside & (z < zbuf[rows, cols])
        if not keep.any():
            continue
        w = bary[:, keep] * inv_z[:, None]                                      # perspective-correct
        w /= w.sum(0, keepdims=True)
        zbuf[rows[keep], cols[keep]] = z[keep]
        image[rows[keep], cols[keep]] = _bilinear(tex, w.T @ uv[tri])
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if not return_depth:
        return image
    centres = (np.arange(resolution) + 0.5) / resolution - 0.5
    u, v = np.meshgrid(centres / focal, centres / focal)          # camera-plane slope of each ray
    return image, zbuf * np.sqrt(1 + u * u + v * v), np.isfinite(zbuf)
