"""Cameras, rays and stratified sampling vs EG3D's recorded outputs (fixture_rays,
fixture_importance) and a line-by-line port of EG3D's ray/box intersection."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from nerfgan_kernels.render import (RaySampler, camera_angles, camera_rays, ffhq_intrinsics,
                                    fov_intrinsics, look_at_camera, ray_box_intersect,
                                    rays_from_matrices, stratified_depths)
from helpers import fixture_path, rel_err

# The ray maths is EG3D's sequence of float32 operations: bit-exact on this CPU today; 1e-5 (the
# issue's bound) leaves room for another BLAS or device rounding the matrix product differently.
TOL = 1e-5

# fixture_rays.json: LookAtPoseSampler(pi/2 + yaw, pi/2 + pitch, lookat [0, 0, 0.2], radius 2.7)
# with (yaw, pitch) offsets (0, 0) and (0.35, -0.2), intrinsics FOV_to_intrinsics(18.837).
FIXTURE_H = [math.pi / 2, math.pi / 2 + 0.35]
FIXTURE_V = [math.pi / 2, math.pi / 2 - 0.2]


@pytest.fixture(scope="module")
def rays_fx():
    return load_file(fixture_path("fixture_rays.safetensors"))


def test_camera_rays_match_eg3d_fixture(rays_fx):
    origins, directions = camera_rays(rays_fx["c"], 64)
    assert origins.shape == directions.shape == (2, 4096, 3)
    assert rel_err(origins, rays_fx["ray_origins"]) <= TOL
    assert rel_err(directions, rays_fx["ray_directions"]) <= TOL


def test_skewed_off_centre_intrinsics_match_eg3d_fixture(rays_fx):
    origins, directions = rays_from_matrices(rays_fx["cam2world"], rays_fx["intrinsics_skew"], 64)
    assert rel_err(origins, rays_fx["ray_origins_skew"]) <= TOL
    assert rel_err(directions, rays_fx["ray_directions_skew"]) <= TOL
    # The skew really changes the rays of camera 1 (so the test above could fail).
    assert rel_err(directions[1], rays_fx["ray_directions"][1]) > 1e-3


def test_ray_sampler_module_has_eg3d_call_convention(rays_fx):
    _, directions = RaySampler()(rays_fx["cam2world"], rays_fx["intrinsics"], 64)
    assert rel_err(directions, rays_fx["ray_directions"]) <= TOL


def test_look_at_camera_reproduces_fixture_cameras(rays_fx):
    c = look_at_camera(torch.tensor(FIXTURE_H), torch.tensor(FIXTURE_V), radius=2.7,
                       lookat=(0, 0, 0.2), intrinsics=fov_intrinsics(18.837))
    assert c.shape == (2, 25)
    assert (c - rays_fx["c"]).abs().max() <= 1e-6


def test_directions_are_unit_and_row_zero_is_the_top():
    c = look_at_camera(math.pi / 2, math.pi / 2, lookat=(0, 0, 0))  # at (0, 0, 2.7) looking at -z
    origins, directions = camera_rays(c, 4)
    assert torch.allclose(directions.norm(dim=-1), torch.ones(1, 16), atol=1e-6)
    assert torch.allclose(origins, torch.tensor([0.0, 0.0, 2.7]).expand(1, 16, 3), atol=1e-6)
    top_left, bottom_right = directions[0, 0], directions[0, 15]
    assert top_left[1] > 0 and bottom_right[1] < 0  # world y is up; image row 0 is the top
    assert top_left[0] < 0 and bottom_right[0] > 0  # column 0 is on the left (camera +x = world +x)
    assert directions[0, 1, 0] > directions[0, 0, 0]  # m = i*n + j: the next ray is the next column


def test_ffhq_intrinsics_are_the_dataset_labels():
    K = ffhq_intrinsics()
    assert K[0, 0] == K[1, 1] == pytest.approx(4.2647)
    assert K[0, 2] == K[1, 2] == 0.5
    assert fov_intrinsics(18.837)[0, 0].item() == pytest.approx(4.2634, abs=1e-4)


def test_camera_angles(rays_fx):
    yaw, elevation = camera_angles(rays_fx["c"])
    assert yaw[0].item() == pytest.approx(0.0, abs=1e-4)
    assert elevation[0].item() == pytest.approx(0.0, abs=1e-4)
    x, y, z = rays_fx["c"][1, [3, 7, 11]].tolist()
    assert yaw[1].item() == pytest.approx(math.degrees(math.atan2(x, z)), abs=1e-4)
    assert elevation[1].item() == pytest.approx(math.degrees(math.atan2(y, math.hypot(x, z))), abs=1e-4)
    assert yaw[1] > 0 and elevation[1] > 0  # h > pi/2 moves the camera to +x, v < pi/2 moves it up
    # With lookat at the origin the elevation is the polar angle's complement, arcsin(1 - 2v/pi).
    v = 1.2
    _, elev = camera_angles(look_at_camera(math.pi / 2, v, lookat=(0, 0, 0)))
    assert elev.item() == pytest.approx(math.degrees(math.asin(1 - 2 * v / math.pi)), abs=1e-3)


def _eg3d_ray_limits_box(rays_o, rays_d, box_side_length):
    """EG3D's math_utils.get_ray_limits_box + the renderer's fill for invalid rays, line by line."""
    o_shape = rays_o.shape
    rays_o, rays_d = rays_o.detach().reshape(-1, 3), rays_d.detach().reshape(-1, 3)
    h = box_side_length / 2
    bounds = torch.tensor([[-h, -h, -h], [h, h, h]], dtype=rays_o.dtype)
    is_valid = torch.ones(rays_o.shape[:-1], dtype=bool)
    invdir = 1 / rays_d
    sign = (invdir < 0).long()
    tmin = (bounds.index_select(0, sign[..., 0])[..., 0] - rays_o[..., 0]) * invdir[..., 0]
    tmax = (bounds.index_select(0, 1 - sign[..., 0])[..., 0] - rays_o[..., 0]) * invdir[..., 0]
    tymin = (bounds.index_select(0, sign[..., 1])[..., 1] - rays_o[..., 1]) * invdir[..., 1]
    tymax = (bounds.index_select(0, 1 - sign[..., 1])[..., 1] - rays_o[..., 1]) * invdir[..., 1]
    is_valid[torch.logical_or(tmin > tymax, tymin > tmax)] = False
    tmin, tmax = torch.max(tmin, tymin), torch.min(tmax, tymax)
    tzmin = (bounds.index_select(0, sign[..., 2])[..., 2] - rays_o[..., 2]) * invdir[..., 2]
    tzmax = (bounds.index_select(0, 1 - sign[..., 2])[..., 2] - rays_o[..., 2]) * invdir[..., 2]
    is_valid[torch.logical_or(tmin > tzmax, tzmin > tmax)] = False
    tmin, tmax = torch.max(tmin, tzmin), torch.min(tmax, tzmax)
    tmin[torch.logical_not(is_valid)] = -1
    tmax[torch.logical_not(is_valid)] = -2
    ray_start, ray_end = tmin.reshape(*o_shape[:-1], 1), tmax.reshape(*o_shape[:-1], 1)
    is_ray_valid = ray_end > ray_start
    ray_start[~is_ray_valid] = ray_start[is_ray_valid].min()
    ray_end[~is_ray_valid] = ray_start[is_ray_valid].max()
    return ray_start, ray_end, is_ray_valid


def test_ray_box_intersect_matches_eg3d():
    g = torch.Generator().manual_seed(0)
    c = look_at_camera(torch.rand(3, generator=g) + 1.0, torch.rand(3, generator=g) + 1.0)
    origins, directions = camera_rays(c, 16)
    # Wide rays (many miss the box) and some rays starting inside the box.
    directions = torch.nn.functional.normalize(directions + 0.3 * torch.randn(directions.shape, generator=g), dim=-1)
    origins = origins.clone()
    origins[2, :50] = torch.rand(50, 3, generator=g) - 0.5
    start, end, hit = ray_box_intersect(origins, directions, 1.0)
    ref_start, ref_end, ref_hit = _eg3d_ray_limits_box(origins, directions, 1.0)
    assert 0 < hit.sum() < hit.numel() and (start[2, :50] < 0).all()
    assert torch.equal(hit, ref_hit)
    assert torch.equal(start, ref_start) and torch.equal(end, ref_end)


def test_ray_box_intersect_simple_cases():
    origins = torch.tensor([[[0.0, 0.0, 2.7], [0.0, 2.0, 2.7], [0.1, 0.1, 2.7]]])
    directions = torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.0, 0.0, -2.0]]])
    start, end, hit = ray_box_intersect(origins, directions, 1.0)
    assert hit[0, :, 0].tolist() == [True, False, True]
    assert start[0, 0].item() == pytest.approx(2.2) and end[0, 0].item() == pytest.approx(3.2)
    assert start[0, 2].item() == pytest.approx(1.1) and end[0, 2].item() == pytest.approx(1.6)  # |d| = 2
    # The miss gets the smallest and the largest start of the hitting rays (EG3D's fill).
    assert start[0, 1].item() == pytest.approx(1.1) and end[0, 1].item() == pytest.approx(2.2)
    # No ray hits: start = end = 0.
    start, end, hit = ray_box_intersect(origins[:, 1:2], directions[:, 1:2], 1.0)
    assert not hit.any() and start.abs().max() == 0 and end.abs().max() == 0


# ---- stratified sampling

def test_stratified_deterministic_is_linspace():
    depths = stratified_depths(2, 5, 48, 2.25, 3.3, deterministic=True)
    assert depths.shape == (2, 5, 48, 1)
    assert torch.equal(depths, torch.linspace(2.25, 3.3, 48).reshape(1, 1, 48, 1).expand(2, 5, 48, 1))


def test_stratified_injected_jitter_matches_eg3d_fixture():
    fx = load_file(fixture_path("fixture_importance.safetensors"))
    N, R, D, _ = fx["depths_coarse"].shape
    depths = stratified_depths(N, R, D, 2.25, 3.3, jitter=fx["stratified_jitter"])
    assert rel_err(depths, fx["depths_coarse"]) <= 1e-6


def test_stratified_random_jitter_stays_in_bins_and_uses_the_generator():
    a = stratified_depths(2, 7, 16, 1.0, 2.5, generator=torch.Generator().manual_seed(3))
    b = stratified_depths(2, 7, 16, 1.0, 2.5, generator=torch.Generator().manual_seed(3))
    base = stratified_depths(2, 7, 16, 1.0, 2.5, deterministic=True)
    width = 1.5 / 15
    assert torch.equal(a, b)
    assert ((a - base) >= 0).all() and ((a - base) < width * (1 + 1e-5)).all()
    assert ((a - base) > 0.05 * width).any()  # really jittered
    assert (a[:, :, 1:] >= a[:, :, :-1]).all()


def test_stratified_per_ray_limits_equal_float_limits():
    start, end = torch.full((2, 3, 1), 2.25), torch.full((2, 3, 1), 3.3)
    jitter = torch.rand(2, 3, 8, 1, generator=torch.Generator().manual_seed(0))
    per_ray = stratified_depths(2, 3, 8, start, end, jitter=jitter)
    scalar = stratified_depths(2, 3, 8, 2.25, 3.3, jitter=jitter)
    assert rel_err(per_ray, scalar) <= 1e-6
    # Different limits per ray reach their own ends.
    start = torch.rand(2, 3, 1) + 1
    end = start + torch.rand(2, 3, 1) + 0.5
    d = stratified_depths(2, 3, 8, start, end, deterministic=True)
    assert torch.allclose(d[:, :, 0], start) and torch.allclose(d[:, :, -1], end)


def test_stratified_disparity_space_is_linear_in_inverse_depth():
    d = stratified_depths(1, 2, 9, 2.0, 4.0, disparity_space=True, deterministic=True)
    inv = 1 / d[0, 0, :, 0]
    assert torch.allclose(inv, torch.linspace(0.5, 0.25, 9), atol=1e-6)
    jittered = stratified_depths(1, 2, 9, 2.0, 4.0, disparity_space=True,
                                 jitter=torch.full((1, 2, 9, 1), 0.5))
    s = (1 / jittered - 0.5) / (0.25 - 0.5)  # position in [0, 1] of the inverse depth
    assert torch.allclose(s[0, 0, :, 0], torch.linspace(0, 1, 9) + 0.5 / 8, atol=1e-6)


@pytest.mark.parametrize("call, name", [
    (lambda: camera_rays(torch.zeros(2, 24), 8), "c"),
    (lambda: camera_rays(torch.zeros(2, 25), 0), "resolution"),
    (lambda: camera_angles(torch.zeros(25)), "c"),
    (lambda: rays_from_matrices(torch.zeros(2, 4, 4), torch.zeros(3, 3, 3), 8), "intrinsics"),
    (lambda: ray_box_intersect(torch.zeros(1, 4, 3), torch.zeros(1, 4, 2), 1.0), "directions"),
    (lambda: ray_box_intersect(torch.zeros(1, 4, 3), torch.ones(1, 4, 3), -1.0), "box_side"),
    (lambda: stratified_depths(2, 3, 1, 2.0, 3.0), "depth_resolution"),
    (lambda: stratified_depths(2, 3, 8, 2.0, 3.0, jitter=torch.zeros(2, 3, 7, 1)), "jitter"),
    (lambda: stratified_depths(2, 3, 8, torch.zeros(2, 4, 1), 3.0), "ray_start"),
    (lambda: stratified_depths(2, 3, 8, 2.0, float("nan")), "ray_end"),
    (lambda: look_at_camera(torch.zeros(2), torch.zeros(3)), "h and v"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
