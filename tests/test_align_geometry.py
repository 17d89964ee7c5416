"""Alignment geometry without the detector: mesh, pose fit, label, crop, smoothing, bad files."""

import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from helpers import assert_eg3d_look_at_label
from textured_mesh import mesh_in_camera, render_textured_mesh
from inversion.align.calibrate import fit_angle_bias
from inversion.align.convention import Convention, bias_terms, camera_from_angles, crop_corners
from inversion.align.crop import outside_fraction, warp_crop
from inversion.align.pipeline import (
    AlignmentError,
    Measurement,
    read_photo,
    smooth_measurements,
)
from inversion.align.pose import Pose, canonical_mesh, fit_pose, rim_vertices
from nerfgan_kernels.models.metadata import GeneratorMetadata
from nerfgan_kernels.render import camera_angles

FFHQ = Convention()


def project_mesh(camera: torch.Tensor, res: int, conv: Convention = FFHQ) -> np.ndarray:
    """Perspective landmarks (468, 3) of the canonical mesh placed by ``conv``, seen by camera:
    x, y in pixels, z = depth offset in x's pixel scale (as MediaPipe reports it)."""
    pc, focal = mesh_in_camera(camera, conv)
    uv = (pc[:, :2] / pc[:, 2:3] * focal + 0.5) * res
    z = (pc[:, 2:3] - pc[:, 2].mean()) * focal * res / pc[:, 2].mean()
    return np.concatenate([uv, z], 1)


def rolled(camera: torch.Tensor, degrees: float) -> torch.Tensor:
    """The camera turned about its viewing axis by ``degrees``."""
    c = camera.clone()
    R = c[:16].reshape(4, 4)[:3, :3]
    a = math.radians(degrees)
    turn = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    c[:16].reshape(4, 4)[:3, :3] = R @ turn
    return c


def test_canonical_mesh_and_its_rim():
    v, f = canonical_mesh()
    assert v.shape == (468, 3) and f.shape == (898, 3) and f.min() == 0 and f.max() == 467
    rim = rim_vertices()
    assert len(rim) == 36 and 10 in rim and 152 in rim  # forehead top, chin: the face oval
    assert 1 not in rim and 33 not in rim               # nose tip, eye corner: fitted


@pytest.mark.parametrize("use_depth", [True, False])
def test_fit_recovers_the_camera_from_exact_landmarks(use_depth):
    tol = 0.5 if use_depth else 1.5   # the 2D fit is scaled-orthographic: perspective costs ~1 deg
    rng = np.random.default_rng(0)
    for _ in range(8):
        yaw, el = rng.uniform(-45, 45), rng.uniform(-15, 15)
        cam = FFHQ.camera(fit_pose(project_mesh(camera_from_angles(yaw, el), 512), use_depth=use_depth))
        assert abs(cam["yaw"] - yaw) < tol and abs(cam["elevation"] - el) < tol and abs(cam["roll"]) < tol


def test_fit_is_robust_to_outlier_landmarks():
    lm = project_mesh(camera_from_angles(25.0, -10.0), 512)
    rng = np.random.default_rng(1)
    bad = rng.choice(468, 60, replace=False)
    lm[bad] += rng.normal(0, 40, (60, 3))
    cam = FFHQ.camera(fit_pose(lm))
    assert abs(cam["yaw"] - 25) < 1.0 and abs(cam["elevation"] + 10) < 1.0
    plain = FFHQ.camera(fit_pose(lm, iterations=1))  # no re-weighting: visibly worse
    assert abs(plain["yaw"] - 25) + abs(plain["elevation"] + 10) > abs(cam["yaw"] - 25) + abs(cam["elevation"] + 10)


def test_fit_pose_rejects_bad_landmarks():
    with pytest.raises(ValueError, match="landmarks must be"):
        fit_pose(np.zeros((100, 3)))
    lm = project_mesh(camera_from_angles(0, 0), 256)
    lm[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_pose(lm)


def test_roll_is_measured_and_the_label_has_none():
    base = camera_from_angles(-20.0, 8.0)
    cam = FFHQ.camera(fit_pose(project_mesh(rolled(base, 12.0), 512)))
    assert abs(abs(cam["roll"]) - 12.0) < 0.5
    assert abs(cam["yaw"] + 20) < 0.5 and abs(cam["elevation"] - 8) < 0.5
    assert torch.allclose(cam["label"], base, atol=0.02)   # the unrolled camera


@pytest.mark.parametrize("yaw,el", [(0.0, 0.0), (40.0, -12.0), (-33.0, 14.0)])
def test_labels_are_valid_eg3d_cameras(yaw, el):
    c = camera_from_angles(yaw, el)
    assert_eg3d_look_at_label(c)
    got_yaw, got_el = camera_angles(c[None])
    assert abs(float(got_yaw) - yaw) < 1e-3 and abs(float(got_el) - el) < 1e-3
    assert torch.allclose(c[16:], torch.tensor([4.2647, 0, 0.5, 0, 4.2647, 0.5, 0, 0, 1.0]))


def test_crop_box_reproduces_the_render_framing():
    """Landmarks of a render at the convention's own camera: the crop is the whole render."""
    for yaw, el in ((0.0, 0.0), (30.0, 10.0)):
        box = FFHQ.crop_box(fit_pose(project_mesh(camera_from_angles(yaw, el), 512)))
        assert np.allclose(box["center"], [256, 256], atol=4.0) and abs(box["side"] / 512 - 1) < 0.03


def test_convention_round_trip_and_errors():
    conv = Convention(world_per_cm=0.02, mesh_origin=(0.0, -0.05, 0.09), name="x")
    assert Convention.from_dict(conv.to_dict()) == conv
    assert Convention.from_dict(None) == FFHQ
    with pytest.raises(ValueError, match="unknown keys"):
        Convention.from_dict({"focal": 4.0, "fov": 12})

    class G:
        metadata = GeneratorMetadata(alignment=conv.to_dict())
    assert Convention.for_generator(G()) == conv
    biased = Convention(yaw_bias=(1.0, 0.5), elevation_bias=(2.0, -1.0, 0.5, 0.25))
    assert Convention.from_dict(biased.to_dict()) == biased
    with pytest.raises(ValueError, match="elevation_bias must have 0 or 4"):
        Convention(elevation_bias=(1.0, 2.0))


def test_detector_bias_is_removed_from_the_label():
    """camera() subtracts the convention's bias polynomials from the measured angles and labels
    the corrected camera; an empty bias changes nothing."""
    pose = fit_pose(project_mesh(camera_from_angles(30.0, 9.0), 512))
    plain = FFHQ.camera(pose)
    yb, eb = (2.0, -0.5), (3.0, -4.0, 1.0, 2.0)
    biased = Convention(yaw_bias=yb, elevation_bias=eb).camera(pose)
    u, v = plain["yaw"] / 45, plain["elevation"] / 15
    assert math.isclose(biased["yaw"], plain["yaw"] - (yb[0] * u + yb[1] * u ** 3), abs_tol=1e-9)
    assert math.isclose(biased["elevation"], plain["elevation"] - (eb[0] + eb[1] * u * u + eb[2] * v + eb[3] * u * u * v),
                        abs_tol=1e-9)
    expected = camera_from_angles(biased["yaw"], biased["elevation"])
    assert torch.allclose(biased["label"], expected) and np.allclose(biased["position"], expected[[3, 7, 11]].double())
    assert biased["roll"] == plain["roll"]


def test_fit_angle_bias_recovers_a_known_bias_despite_outliers():
    rng = np.random.default_rng(3)
    true = np.stack([rng.uniform(-45, 45, 200), rng.uniform(-15, 15, 200)], 1)
    yb, eb = np.array([4.0, -1.0]), np.array([4.5, -8.0, -2.0, 6.0])
    measured = true.copy()
    for _ in range(30):   # measured = true + bias(measured): solve by fixed point
        yt, et = bias_terms(measured[:, 0], measured[:, 1])
        measured = true + np.stack([yt @ yb, et @ eb], 1)
    noisy = measured + rng.normal(0, 0.3, measured.shape)
    noisy[:10, 1] += rng.choice([-20.0, 20.0], 10)            # 5% gross elevation outliers
    grid = np.stack(np.meshgrid(np.linspace(-45, 45, 10), np.linspace(-15, 15, 7)), -1).reshape(-1, 2)
    gy, ge = bias_terms(grid[:, 0], grid[:, 1])

    def worst(fitted):   # largest error of the fitted bias over the range, degrees
        return np.abs(gy @ (np.array(fitted[0]) - yb)).max(), np.abs(ge @ (np.array(fitted[1]) - eb)).max()
    assert max(worst(fit_angle_bias(noisy, true))) < 0.5
    assert worst(fit_angle_bias(noisy, true, iterations=1))[1] > 2.0   # plain least squares is pulled off
    with pytest.raises(ValueError, match="must both be"):
        fit_angle_bias(noisy[:, :1], true)


def test_warp_crop_identity_rotation_and_outside():
    img = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    assert np.array_equal(warp_crop(img, (20, 20), 40, 0.0, 40), img)
    # roll 90: the crop's +x axis points up the photo -> the crop is the photo turned
    turned = warp_crop(img, (20, 20), 40, 90.0, 40)
    assert np.array_equal(turned, np.rot90(img, k=-1))
    corners = crop_corners((20, 20), 40, 0.0)
    assert np.allclose(corners, [[0, 0], [40, 0], [40, 40], [0, 40]])
    assert outside_fraction((20, 20), 40, 0.0, 40, 40) == 0.0
    assert abs(outside_fraction((40, 20), 40, 0.0, 40, 40) - 0.5) < 0.05
    # downscaling by 4: area pre-filter, no aliasing of a 1-px checkerboard (mean grey, not stripes)
    checker = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    small = warp_crop(checker, (32, 32), 64, 0.0, 16)
    assert small.shape == (16, 16) and abs(small.astype(float) - 127.5).max() < 40
    mask = warp_crop(np.full((40, 40), 255, np.uint8), (40, 20), 40, 0.0, 40, padding="zeros")
    assert mask[:, :15].min() == 255 and mask[:, 25:].max() == 0


def test_roll_direction_of_the_crop_matches_the_label():
    """Crop of a rolled camera's landmarks by the measured roll: the landmarks land where the
    unrolled camera puts them."""
    base = camera_from_angles(15.0, 5.0)
    lm = project_mesh(rolled(base, 20.0), 512)
    box = FFHQ.crop_box(fit_pose(lm))
    # photo -> crop coordinates of the landmarks
    from inversion.align.convention import crop_axes
    A = crop_axes(box["roll"])
    in_crop = ((lm[:, :2] - box["center"]) @ A) / box["side"] * 512 + 256
    expected = project_mesh(base, 512)[:, :2]
    assert np.sqrt(((in_crop - expected) ** 2).sum(1)).mean() < 3.0


def test_smoothing_reduces_jitter_and_keeps_constants():
    rng = np.random.default_rng(0)

    def measurement(yaw):
        return Measurement(np.zeros((478, 3)), None, yaw, 5.0, 2.0, np.array([100.0, 80.0]), 50.0)
    ms = [measurement(10 + rng.normal(0, 3)) for _ in range(20)]
    before = np.std(np.diff([m.yaw for m in ms]))
    smooth_measurements(ms, 1.5)
    assert np.std(np.diff([m.yaw for m in ms])) < 0.5 * before
    assert all(abs(m.elevation - 5) < 0.05 and abs(m.roll - 2) < 1e-9 and abs(m.side - 50) < 1e-9 for m in ms)


def test_read_photo_refuses_grey_and_broken_files(tmp_path):
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "ok.png", rgb)
    assert np.array_equal(read_photo(tmp_path / "ok.png"), rgb)
    iio.imwrite(tmp_path / "rgba.png", np.concatenate([rgb, np.full((16, 16, 1), 255, np.uint8)], 2))
    assert np.array_equal(read_photo(tmp_path / "rgba.png"), rgb)
    iio.imwrite(tmp_path / "grey.png", rgb[..., 0])
    with pytest.raises(AlignmentError, match="grey.png: greyscale"):
        read_photo(tmp_path / "grey.png")
    iio.imwrite(tmp_path / "grey3.png", np.repeat(rgb[..., :1], 3, 2))
    with pytest.raises(AlignmentError, match="grey3.png: greyscale"):
        read_photo(tmp_path / "grey3.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(AlignmentError, match="broken.png: cannot read"):
        read_photo(tmp_path / "broken.png")
    with pytest.raises(AlignmentError, match="missing.png: cannot read"):
        read_photo(tmp_path / "missing.png")


def test_pose_project_matches_the_model():
    pose = Pose(2.0, np.eye(3), np.array([10.0, 20.0, 0.0]), 0.0)
    assert np.allclose(pose.project(np.array([[1.0, 2.0, 3.0]])), [[12.0, 24.0]])


def test_textured_mesh_renderer_puts_each_vertex_texture_at_its_projection():
    """The test rasterizer (tests/textured_mesh.py): a texture that encodes its own coordinates
    (red = x, green = y), mapped by the frontal projection, decodes back to each vertex's uv where
    the vertex projects in a turned view; pixels off the mesh keep the background."""
    size = 256
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    texture = np.stack([xs, ys, np.zeros_like(xs)], -1).round().clip(0, 255).astype(np.uint8)
    uv = project_mesh(camera_from_angles(0.0, 0.0), size)[:, :2]
    cam = camera_from_angles(20.0, -8.0)
    img = render_textured_mesh(cam, size, texture, uv, background=(0, 0, 255))
    px = project_mesh(cam, size)[:, :2]
    interior = np.setdiff1d(np.arange(len(uv)), rim_vertices())
    got = img[px[interior, 1].astype(int), px[interior, 0].astype(int)]
    visible = got[:, 2] == 0
    assert visible.mean() > 0.8
    err = np.linalg.norm(got[visible, :2].astype(float) - uv[interior][visible], axis=1)
    assert np.median(err) < 1.0 and np.percentile(err, 90) < 2.5
    assert (img[:8, :8] == [0, 0, 255]).all()


@pytest.mark.parametrize("yaw,elevation", [(15.0, 5.0), (-30.0, -10.0)])
def test_textured_mesh_depth_is_the_distance_along_the_ray(yaw, elevation):
    """The rasterizer's exact depth (the time-to-quality benchmark's out-of-family ground truth):
    at each vertex's pixel it equals the vertex's distance from the camera (the renderer's depth
    convention), not its camera-space z, which differs by a few thousandths off the axis."""
    c = camera_from_angles(yaw, elevation).reshape(25)
    res = 512
    _, depth, mask = render_textured_mesh(c, res, np.full((8, 8, 3), 128, np.uint8), np.full((468, 2), 4.0),
                                          return_depth=True)
    pc, focal = mesh_in_camera(c)
    col, row = np.clip(((pc[:, :2] / pc[:, 2:3] * focal + 0.5) * res).astype(int), 0, res - 1).T
    assert mask[row, col].mean() > 0.9 and np.isinf(depth[~mask]).all()  # rim vertices can miss their pixel
    along_ray = np.abs(depth[row, col] - np.linalg.norm(pc, axis=1))
    camera_z = np.abs(depth[row, col] - pc[:, 2])
    assert np.median(along_ray) < 1e-3 < 2e-3 < np.median(camera_z)
