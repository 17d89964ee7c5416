"""The camera module (nerfgan_kernels/render/cameras.py): true angles and EG3D's (h, v) through
the same math, the named geometries, neighbour and turntable cameras, and the cameras of the data
modules unchanged by the move (issue 19)."""

import math

import pytest
import torch

from nerfgan_kernels.render import cameras
from nerfgan_kernels.render.cameras import (AFHQ, FFHQ, SHAPENET_CARS, angles_to_eg3d,
                                            camera_angles, camera_from_angles, eg3d_to_angles,
                                            geometry_for, look_at_camera, neighbour_cameras,
                                            turntable_cameras)

from helpers import assert_eg3d_look_at_label


def _angles(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g) * 160 - 80), (torch.rand(n, generator=g) * 120 - 60)


def test_camera_from_angles_round_trips_and_is_a_look_at_label():
    yaw, elevation = _angles()
    c = camera_from_angles(yaw, elevation)
    assert c.shape == (64, 25)
    y, e = camera_angles(c)
    assert torch.allclose(y, yaw, atol=1e-4) and torch.allclose(e, elevation, atol=1e-4)
    for label in c[:8]:
        assert_eg3d_look_at_label(label)
    # Another geometry: the label's position is on its sphere, its intrinsics are its focal.
    cars = camera_from_angles(yaw, elevation, radius=SHAPENET_CARS.radius, pivot=SHAPENET_CARS.pivot,
                              focal=SHAPENET_CARS.focal)
    assert torch.allclose(cars[:, [3, 7, 11]].norm(dim=1), torch.full((64,), 1.7), atol=1e-5)
    assert torch.allclose(cars[:, 16], torch.full((64,), 1.7074))


def test_eg3d_parameters_are_the_same_cameras():
    yaw, elevation = _angles(seed=1)
    h, v = angles_to_eg3d(yaw, elevation)
    assert torch.allclose(look_at_camera(h.float(), v.float()), camera_from_angles(yaw, elevation),
                          atol=1e-6)
    y, e = eg3d_to_angles(h, v)
    assert torch.allclose(y, yaw.double(), atol=1e-5) and torch.allclose(e, elevation.double(), atol=1e-5)
    # EG3D's v is not an elevation: pi/2 +- 8 degrees of v is an elevation of -+5.1 degrees.
    _, e8 = eg3d_to_angles(math.pi / 2, math.pi / 2 + math.radians(8.0))
    assert float(e8) == pytest.approx(-5.0997, abs=1e-3)
    _, e8 = camera_angles(look_at_camera(math.pi / 2, math.pi / 2 - math.radians(8.0)))
    assert float(e8) == pytest.approx(5.0997, abs=1e-3)


def test_data_cameras_are_unchanged_by_the_move():
    """The labels the data modules and the aligner produced before the camera module (formulas
    inlined here) equal today's to 1e-6: training, held-out, demo and aligner cameras."""
    from inversion.align.convention import Convention, camera_from_angles as convention_camera
    from inversion.data.heads import yaw_cameras
    from inversion.data.train_default import HELD_OUT_VIEWS, TrainConfig, held_out_cameras, item_cameras

    yaws = torch.tensor([-45.0, -20.0, 0.0, 20.0, 45.0])
    old_yaw_cameras = look_at_camera(math.pi / 2 + torch.deg2rad(yaws), torch.full_like(yaws, math.pi / 2))
    assert torch.allclose(yaw_cameras(yaws), old_yaw_cameras, atol=1e-6)
    y = torch.tensor([v[0] for v in HELD_OUT_VIEWS])
    p = torch.tensor([v[1] for v in HELD_OUT_VIEWS])
    old_held = look_at_camera(math.pi / 2 + torch.deg2rad(y), math.pi / 2 + torch.deg2rad(p))
    assert torch.allclose(held_out_cameras(), old_held, atol=1e-6)
    _, elevation = camera_angles(held_out_cameras())
    assert torch.allclose(elevation.abs(), torch.full((6,), 5.0997), atol=1e-3)  # not 8 degrees
    assert item_cameras(3, TrainConfig(views=4)).shape == (4, 25)
    conv = Convention()
    for yaw, elev in ((0.0, 0.0), (30.0, -10.0), (-50.0, 15.0)):
        phi = math.pi / 2 - math.radians(elev)
        old = look_at_camera(math.pi / 2 + math.radians(yaw), math.pi * (1 - math.cos(phi)) / 2,
                             radius=conv.radius, lookat=conv.pivot, intrinsics=FFHQ.intrinsics())[0]
        assert torch.allclose(convention_camera(yaw, elev, conv), old, atol=1e-6)


def test_geometries_and_generator_config():
    assert geometry_for() is FFHQ and geometry_for("afhq") is AFHQ
    assert AFHQ.pivot == (0.0, 0.0, -0.06) and SHAPENET_CARS.full_azimuth
    g = geometry_for("ffhq", {"avg_camera_radius": 3.0, "avg_camera_pivot": [0, 0.1, 0]})
    assert (g.radius, g.pivot, g.focal, g.name) == (3.0, (0.0, 0.1, 0.0), FFHQ.focal, "ffhq")
    assert geometry_for(None, {"avg_camera_radius": 2.7, "avg_camera_pivot": [0, 0, 0.2]}) is FFHQ
    with pytest.raises(ValueError, match="geometry"):
        geometry_for("lsun")
    with pytest.raises(ValueError, match="avg_camera_pivot"):
        geometry_for(None, {"avg_camera_pivot": [0, 0]})
    assert torch.equal(cameras.ffhq_intrinsics(), FFHQ.intrinsics())


def test_neighbour_cameras_follow_nerfinvertor_and_the_geometry():
    g = torch.Generator().manual_seed(3)
    c = neighbour_cameras(500, generator=g)
    g = torch.Generator().manual_seed(3)  # NeRFInvertor's draws, in EG3D's parameters
    h = (math.pi / 2 + 0.3 * torch.randn(500, generator=g)).clamp(math.pi / 2 - 1.3, math.pi / 2 + 1.3)
    v = (math.pi / 2 + 0.155 * torch.randn(500, generator=g)).clamp(math.pi / 2 - 1.3, math.pi / 2 + 1.3)
    assert torch.equal(c, look_at_camera(h, v))
    cars = neighbour_cameras(500, SHAPENET_CARS, generator=torch.Generator().manual_seed(4))
    yaw, _ = camera_angles(cars)
    assert float(yaw.min()) < -150 and float(yaw.max()) > 150  # all around the car
    assert torch.allclose(cars[:, [3, 7, 11]].norm(dim=1), torch.full((500,), 1.7), atol=1e-5)
    assert torch.allclose(cars[:, 16], torch.full((500,), SHAPENET_CARS.focal))


def test_turntable_keeps_the_input_view_elevation_and_distance():
    c = camera_from_angles(15.0, -7.0)
    frames = turntable_cameras(c, 12)
    assert frames.shape == (12, 25) and torch.allclose(frames[0], c[0], atol=1e-5)
    yaw, elevation = camera_angles(frames)
    assert torch.allclose(elevation, torch.full((12,), -7.0), atol=1e-4)
    assert float(yaw.max()) == pytest.approx(15 + FFHQ.turntable_yaw, abs=1e-3)
    car = camera_from_angles(0.0, 20.0, radius=1.7, pivot=(0, 0, 0), focal=1.7074)
    yaw, elevation = camera_angles(turntable_cameras(car, 8, SHAPENET_CARS))
    step = torch.remainder(yaw - torch.arange(8) * 45.0 + 180, 360) - 180  # yaw = 45 i mod 360
    assert torch.allclose(step, torch.zeros(8), atol=1e-3)
    assert torch.allclose(elevation, torch.full((8,), 20.0), atol=1e-4)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="yaw_deg and elevation_deg"):
        camera_from_angles(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="c"):
        camera_angles(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="camera"):
        turntable_cameras(torch.zeros(24), 4)


def test_shapenet_cars_turntable_goes_all_the_way_round(tmp_path):
    """A small generator built from EG3D's ShapeNet-cars config selects the cars preset: its
    turntable covers 360 degrees at radius 1.7 around the pivot (0, 0, 0) with focal 1.7074, and
    its empty space renders white (white_back)."""
    from inversion.outputs import write_turntable
    from nerfgan_kernels.models import build_generator
    from nerfgan_kernels.render.cameras import SHAPENET_CARS, turntable_cameras
    from test_inversion_acceptance import tiny_triplane_kwargs
    kw = tiny_triplane_kwargs()
    kw["rendering_kwargs"].update(ray_start=0.1, ray_end=2.6, box_warp=1.6, white_back=True,
                                  avg_camera_radius=1.7, avg_camera_pivot=[0, 0, 0])
    torch.manual_seed(0)
    G = build_generator(kw, 32)
    assert G.metadata.geometry is SHAPENET_CARS and G.metadata.box == 1.6
    camera = camera_from_angles(30.0, 20.0, radius=1.7, pivot=(0, 0, 0), focal=SHAPENET_CARS.focal)
    frames = turntable_cameras(camera, 8, G.metadata.geometry)
    yaws, elevations = camera_angles(frames)
    steps = torch.diff(torch.sort(torch.remainder(yaws.double(), 360)).values)
    assert torch.allclose(steps, torch.full_like(steps, 45.0), atol=1e-3)     # 8 frames all round
    assert torch.allclose(elevations, torch.full_like(elevations, 20.0), atol=1e-3)
    assert torch.allclose(frames[:, [3, 7, 11]].norm(dim=1), torch.tensor(1.7), atol=1e-5)
    forward = frames[:, [2, 6, 10]]                                            # camera +z axis
    assert torch.allclose(forward, -frames[:, [3, 7, 11]] / 1.7, atol=1e-5)  # looks at the pivot 0
    assert torch.allclose(frames[:, 16], torch.tensor(1.7074)) and torch.allclose(frames[:, 20], torch.tensor(1.7074))
    with torch.no_grad():  # an empty volume: every ray misses, so the background shows
        last = G.decoder.net[-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = -100.0
        ws = G.mapping(torch.randn(1, G.z_dim), camera)
        raw = G.synthesis(ws.expand(2, -1, -1), frames[:2])["image_raw"]
    assert float(raw.min()) > 0.99
    assert write_turntable(G, ws, camera[0], tmp_path, frames=4).exists()
