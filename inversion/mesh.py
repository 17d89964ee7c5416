"""The inverted person as a mesh: the generator's density on a grid over its box, marching cubes,
vertex colours from the decoder.

``export_mesh(G, ws, path)`` writes ``path`` (``.ply`` or ``.obj``, by its suffix) in the **world
frame** (EG3D's cameras look at it as they look at the head, so the mesh overlays the input
camera), and optionally the raw density volume as ``.mrc`` (EG3D's ``gen_samples.py`` writes the
same: sigma on a cube over the box, in voxel coordinates). Densities come from the generator's
point query (``G.point_query``: the fused ``decode_triplane`` op for tri-plane generators, chunked
by the memory planner); the grid is queried slice by slice so a 512^3 grid never holds more than
one slice's features. Vertex colours are the decoder's colour at each vertex (the first three
channels of its features, the low-resolution colour before super-resolution).

The density level defaults to the generator's ``metadata.mesh_threshold`` (EG3D's 10 for EG3D
checkpoints; the default generator's own, whose density scale differs, in its config).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .protocol import NeRFGenerator


def density_grid(G: NeRFGenerator, ws: torch.Tensor, resolution: int = 256, box: float | None = None,
                 slice_points: int = 2 ** 16) -> tuple[np.ndarray, float]:
    """Raw density sigma (resolution, resolution, resolution) float32 on the cell centres of the
    cube [-box/2, box/2]^3 (default: the generator's box, ``metadata.box``), indexed [x, y, z],
    and the cube's side. ws (1, num_ws, w_dim)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 2 <= resolution <= 1024:
        raise ValueError(f"resolution must be an int in [2, 1024], got {resolution!r}")
    if ws.dim() != 3 or ws.shape[0] != 1:
        raise ValueError(f"ws must be (1, num_ws, w_dim), got {tuple(ws.shape)}")
    side = float(G.metadata.box if box is None else box)
    axis = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution * side - side / 2
    query = G.point_query(ws)
    out = np.empty((resolution,) * 3, dtype=np.float32)
    xy = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2).to(ws.device)
    step = max(1, slice_points // (resolution * resolution))  # z slices per query
    with torch.no_grad():
        for k in range(0, resolution, step):
            zs = axis[k:k + step].to(ws.device)
            pts = torch.cat([xy.repeat(len(zs), 1), zs.repeat_interleave(len(xy))[:, None]], 1)
            sigma = query(pts[None], torch.zeros_like(pts)[None])["sigma"][0, :, 0]
            out[:, :, k:k + len(zs)] = sigma.reshape(len(zs), resolution, resolution).permute(1, 2, 0).cpu().numpy()
    return out, side


def export_mesh(G: NeRFGenerator, ws: torch.Tensor, path: str | os.PathLike, resolution: int = 256,
                threshold: float | None = None, mrc: str | os.PathLike | None = None) -> dict:
    """Marching cubes of G's density for latent ws (1, num_ws, w_dim) at ``threshold`` (default
    ``G.metadata.mesh_threshold``) on a ``resolution``^3 grid over the box; writes ``path``
    (.ply / .obj, vertex colours) in world coordinates, and the density volume to ``mrc`` when
    given. Returns {'vertices': V, 'faces': F, 'threshold', 'path'[, 'mrc']}. ValueError when the
    level is outside the volume's range (nothing to mesh)."""
    import trimesh
    from skimage import measure
    path = Path(path)
    if path.suffix.lower() not in (".ply", ".obj"):
        raise ValueError(f"path must end in .ply or .obj, got {str(path)!r}")
    level = float(G.metadata.mesh_threshold if threshold is None else threshold)
    sigma, side = density_grid(G, ws, resolution)
    if mrc is not None:
        write_mrc(sigma, mrc, voxel_size=side / resolution)
    if not sigma.min() < level < sigma.max():
        raise ValueError(f"threshold {level} is outside the density range [{sigma.min():.3g}, {sigma.max():.3g}]: "
                         "nothing to mesh (pass another threshold)")
    voxel = side / resolution
    verts, faces, _, _ = measure.marching_cubes(sigma, level=level, spacing=(voxel,) * 3)
    verts = verts + (voxel / 2 - side / 2)  # cell centres -> world coordinates
    with torch.no_grad():
        pts = torch.from_numpy(verts.astype(np.float32)).to(ws.device)
        rgb = G.point_query(ws)(pts[None], torch.zeros_like(pts)[None])["rgb"][0, :, :3]
    colours = (rgb.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, vertex_colors=colours, process=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    out = {"vertices": len(verts), "faces": len(faces), "threshold": level, "path": str(path)}
    if mrc is not None:
        out["mrc"] = str(mrc)
    return out


def write_mrc(volume: np.ndarray, path: str | os.PathLike, voxel_size: float = 1.0) -> None:
    """The density volume (X, Y, Z) as an MRC file (``mrcfile``; stored z, y, x as MRC expects)."""
    import mrcfile
    with mrcfile.new(os.fspath(path), overwrite=True) as f:
        f.set_data(np.ascontiguousarray(volume.transpose(2, 1, 0)).astype(np.float32))
        f.voxel_size = voxel_size
