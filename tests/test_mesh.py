"""Mesh export (inversion.mesh): marching cubes of the generator's density in the world frame, so
the mesh overlays the input camera; vertex colours; the density volume as .mrc; the CLI flag."""

import json

import numpy as np
import pytest
import torch

from inversion.data.heads import yaw_cameras
from inversion.mesh import density_grid, export_mesh
from nerfgan_kernels.models import load_generator


@pytest.fixture(scope="module")
def mean_head():
    G = load_generator("default")
    return G, G.w_avg.view(1, 1, -1).expand(1, G.num_ws, -1).clone()


def median_depth_gap(vertices, camera, out) -> float:
    """Median |nearest vertex distance - rendered depth| over the pixels of opaque foreground."""
    res = out["image_depth"].shape[-1]
    cam2world, K = camera[0, :16].reshape(4, 4).double(), camera[0, 16:].reshape(3, 3).double()
    pc = (torch.from_numpy(np.asarray(vertices, dtype=np.float64)) - cam2world[:3, 3]) @ cam2world[:3, :3]
    uv = (pc[:, :2] / pc[:, 2:3] * K[0, 0] + 0.5) * res
    inside = ((uv >= 0) & (uv < res)).all(1)
    col, row = uv[inside].long().T
    zbuf = torch.full((res * res,), float("inf"), dtype=torch.float64)
    zbuf.scatter_reduce_(0, row * res + col, pc[inside].norm(dim=1), reduce="amin")
    fg = (out["weights_sum"].reshape(-1) > 0.95) & torch.isfinite(zbuf)
    return float((zbuf - out["image_depth"].reshape(-1).double()).abs()[fg].median())


def test_mesh_overlays_the_render_and_has_colours(mean_head, tmp_path):
    import mrcfile
    import trimesh
    G, ws = mean_head
    assert G.metadata.mesh_threshold == 50.0  # the default generator's own level (EG3D's is 10)
    info = export_mesh(G, ws, tmp_path / "head.ply", resolution=48, mrc=tmp_path / "density.mrc")
    mesh = trimesh.load(tmp_path / "head.ply", process=False)
    assert info["vertices"] == len(mesh.vertices) > 1000 and info["faces"] == len(mesh.faces)
    assert np.abs(mesh.vertices).max() <= G.metadata.box / 2
    colours = np.asarray(mesh.visual.vertex_colors)[:, :3]
    assert colours.std(0).min() > 5  # the decoder's colours, not a constant
    # world frame: seen from a camera, the mesh's nearest vertex per pixel lies at the rendered
    # depth (a mesh in another frame, here mirrored front to back, does not)
    for yaw in (0.0, 35.0):
        c = yaw_cameras([yaw])
        with torch.no_grad():
            out = G.synthesis(ws, c, deterministic=True)
        assert median_depth_gap(mesh.vertices, c, out) < 0.02, yaw
        assert median_depth_gap(mesh.vertices * [1, 1, -1], c, out) > 0.04, yaw
    volume, side = density_grid(G, ws, 48)
    with mrcfile.open(tmp_path / "density.mrc") as f:
        assert np.array_equal(f.data.transpose(2, 1, 0), volume)
        assert float(f.voxel_size.x) == pytest.approx(side / 48)
    export_mesh(G, ws, tmp_path / "head.obj", resolution=24)
    assert (tmp_path / "head.obj").read_text().startswith(("#", "v "))
    with pytest.raises(ValueError, match="outside the density range"):
        export_mesh(G, ws, tmp_path / "none.ply", resolution=16, threshold=1e6)
    with pytest.raises(ValueError, match=".ply or .obj"):
        export_mesh(G, ws, tmp_path / "head.stl", resolution=16)


def test_density_grid_is_the_point_query_on_cell_centres(mean_head):
    G, ws = mean_head
    volume, side = density_grid(G, ws, 8, slice_points=100)  # several queries per slice boundary
    i, j, k = 1, 6, 3
    centre = (torch.tensor([i, j, k], dtype=torch.float32) + 0.5) / 8 * side - side / 2
    with torch.no_grad():
        sigma = G.point_query(ws)(centre.view(1, 1, 3), torch.zeros(1, 1, 3))["sigma"].item()
    assert volume[i, j, k] == pytest.approx(sigma, rel=1e-4, abs=1e-4)
    with pytest.raises(ValueError, match="resolution"):
        density_grid(G, ws, 1)


def test_cli_writes_the_mesh(tmp_path):
    import imageio.v3 as iio
    from inversion.cli import main
    from inversion.data.heads import render_head, sample_head
    from inversion.outputs import to_uint8
    cam = yaw_cameras([20.0])
    iio.imwrite(tmp_path / "head.png", to_uint8(render_head(sample_head(4243, expression=0.3), cam, 128)["rgb"][0]))
    (tmp_path / "cam.json").write_text(json.dumps({"label": cam[0].tolist()}))
    rc = main(["--method", "w", "--image", str(tmp_path / "head.png"), "--camera", str(tmp_path / "cam.json"),
               "--out", str(tmp_path / "run"), "--fast", "--steps", "2", "--frames", "2", "--perceptual", "mse+ssim",
               "--no-progress", "--mesh", "--mesh-resolution", "24", "--mrc"])
    assert rc == 0 and (tmp_path / "run" / "mesh.ply").exists() and (tmp_path / "run" / "density.mrc").exists()
    files = json.loads((tmp_path / "run" / "metrics.json").read_text())["files"]
    assert files["mesh"] == "mesh.ply" and files["density"] == "density.mrc"


def test_mesh_of_a_training_head_matches_its_exact_surface(tmp_path):
    """The default generator's mesh (128^3) at training item 0's latent against that head's exact
    surface (sphere-traced from the training views' range: yaw -50..50, elevation -13..13): the
    symmetric Chamfer distance over the surface both see is at most 0.02 box units."""
    import trimesh
    from scipy.spatial import cKDTree
    from inversion.data.heads import render_head, sample_head
    from inversion.data.train_default import item_z
    from nerfgan_kernels.render import camera_rays
    from nerfgan_kernels.render.cameras import camera_from_angles
    G = load_generator("default")
    with torch.no_grad():
        ws = G.mapping(item_z(0, G.z_dim)[None], torch.zeros(1, 25))  # item 0: head 0, expression 0
    export_mesh(G, ws, tmp_path / "item0.ply", resolution=128)
    V = torch.from_numpy(np.asarray(trimesh.load(tmp_path / "item0.ply", process=False).vertices))
    yaw, elevation = torch.meshgrid(torch.arange(-50, 51, 10.0), torch.tensor([-13.0, 0.0, 13.0]), indexing="ij")
    cams = camera_from_angles(yaw.reshape(-1), elevation.reshape(-1))
    res = 96
    truth = render_head(sample_head(0, expression=0.0), cams, res)
    origins, dirs = camera_rays(cams, res)
    surface, seen = [], torch.zeros(len(V), dtype=torch.bool)
    for i in range(len(cams)):
        fg = truth["mask"][i].reshape(-1) > 0.5
        surface.append((origins[i] + truth["depth"][i].reshape(-1, 1) * dirs[i])[fg])
        cam2world, K = cams[i, :16].reshape(4, 4).double(), cams[i, 16:].reshape(3, 3).double()
        pc = (V - cam2world[:3, 3]) @ cam2world[:3, :3]
        uv = (pc[:, :2] / pc[:, 2:3] * K[0, 0] + 0.5) * res
        inside = ((uv >= 0) & (uv < res)).all(1)
        pixel = uv[:, 1].long().clamp(0, res - 1) * res + uv[:, 0].long().clamp(0, res - 1)
        dist = pc.norm(dim=1)
        zbuf = torch.full((res * res,), float("inf"), dtype=torch.float64)
        zbuf.scatter_reduce_(0, pixel[inside], dist[inside], reduce="amin")
        seen |= inside & (dist <= zbuf[pixel] + 0.01)   # the mesh's front surface in this view
    S, M = torch.cat(surface).double().numpy(), V[seen].numpy()
    to_mesh = cKDTree(M).query(S)[0].mean()
    to_surface = cKDTree(S).query(M)[0].mean()
    chamfer = 0.5 * (to_mesh + to_surface) / G.metadata.box
    assert chamfer <= 0.02, (to_mesh, to_surface)
