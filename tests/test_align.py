"""nerfgan-align end to end with MediaPipe's bundled models (the ``.[align]`` extra; CI installs it)."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe", reason='needs the align extra: pip install -e ".[align]"')
skimage_data = pytest.importorskip("skimage.data")

from helpers import assert_eg3d_look_at_label
from inversion.align import Aligner, AlignmentError, Convention, camera_from_angles
from inversion.align.calibrate import PROCEDURAL_HEADS
from inversion.align.cli import main as align_main
from inversion.data.heads import render_head, sample_head
from inversion.outputs import to_uint8

HELD_OUT_SEEDS = (9000, 9001)   # training heads are seeds 0-19
GRID = [(y, e) for y in (-45, -30, -15, 0, 15, 30, 45) for e in (-15, 0, 15)]


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    iio.imwrite(path, skimage_data.astronaut())
    return path


def test_pose_accuracy_on_renders():
    """Renders of held-out procedural heads with known cameras through the full path (detector,
    fit, label) with the default generator's convention, whose detector-bias correction was
    measured on training heads; a face not found counts as a failure. Figures go to the note."""
    conv = Convention.from_dict(PROCEDURAL_HEADS)
    plain = conv.without_bias()
    cams = torch.stack([camera_from_angles(y, e, conv) for y, e in GRID])
    errors, raw, failures = [], [], 0
    a = Aligner(256, conv)
    try:
        for seed in HELD_OUT_SEEDS:
            renders = render_head(sample_head(seed, expression=0.3), cams, 256)["rgb"]
            for (yaw, el), rgb in zip(GRID, renders):
                try:
                    m = a.measure(to_uint8(rgb), f"seed{seed}_yaw{yaw}_el{el}")
                except AlignmentError:
                    failures += 1
                    continue
                errors.append((abs(m.yaw - yaw), abs(m.elevation - el)))
                p = plain.camera(m.pose)
                raw.append((abs(p["yaw"] - yaw), abs(p["elevation"] - el)))
    finally:
        a.close()
    med, med_raw = np.median(errors, axis=0), np.median(raw, axis=0)
    print(f"\npose on {len(GRID) * len(HELD_OUT_SEEDS)} renders: {failures} not found; median |yaw error| "
          f"{med[0]:.2f}, |elevation error| {med[1]:.2f} (without the bias correction {med_raw[0]:.2f}, "
          f"{med_raw[1]:.2f}); 90th percentiles {np.percentile(errors, 90, 0)}")
    assert failures == 0
    assert med[0] < 3.0 and med[1] < 4.0          # measured 1.68 / 3.17 deg: see issue 8's note
    assert med[0] < med_raw[0] and med[1] < med_raw[1]   # the correction carries over to unseen heads


def test_pose_accuracy_on_the_canonical_mesh_wearing_a_real_face(astronaut):
    """The canonical mesh wearing the astronaut's face (vertex i shows the photo at its landmark
    i: tests/textured_mesh.py), rendered at 512 px at known cameras and aligned through the full
    path with FFHQ's convention, which carries no bias correction. Figures go to the note."""
    from textured_mesh import render_textured_mesh
    photo = iio.imread(astronaut)
    a = Aligner(512)
    try:
        uv = a.measure(photo).landmarks[:468, :2]
        errors = []
        for yaw, el in GRID:
            render = render_textured_mesh(camera_from_angles(yaw, el), 512, photo, uv)
            m = a.measure(render, f"mesh_yaw{yaw}_el{el}")    # AlignmentError (no face) fails the test
            errors.append((m.yaw - yaw, m.elevation - el))
    finally:
        a.close()
    errors = np.abs(errors)
    med = np.median(errors, axis=0)
    print(f"\npose on {len(GRID)} renders of the textured canonical mesh: median |yaw error| {med[0]:.2f}, "
          f"|elevation error| {med[1]:.2f}; 90th percentiles {np.percentile(errors, 90, 0)}")
    assert med[0] < 3.0 and med[1] < 3.0        # measured 2.68 / 2.18 deg: see issue 8's note


def test_crop_of_a_render_matches_the_render_framing():
    """With the default generator's convention (calibrated on its head family), aligning a render
    crops (nearly) the render itself: centre within 5% and size within 10% of the image."""
    a = Aligner(256, Convention.from_dict(PROCEDURAL_HEADS))
    try:
        for yaw, el in ((0.0, 0.0), (25.0, 8.0)):
            img = to_uint8(render_head(sample_head(9002, expression=0.3), camera_from_angles(yaw, el)[None], 256)["rgb"][0])
            m = a.measure(img)
            assert np.abs(m.center - 128).max() < 0.05 * 256 and abs(m.side / 256 - 1) < 0.10
    finally:
        a.close()


def test_astronaut_photo_gives_crop_mask_label_overlay(astronaut, tmp_path):
    rc = align_main([str(astronaut), "--out", str(tmp_path / "out")])
    out = tmp_path / "out"
    assert rc == 0
    crop, mask = iio.imread(out / "astronaut.png"), iio.imread(out / "masks" / "astronaut.png")
    assert crop.shape == (512, 512, 3) and mask.shape == (512, 512)
    assert mask[200:320, 200:320].mean() > 200 and mask.min() < 50    # face is foreground, not all of it
    overlay = iio.imread(out / "overlays" / "astronaut.jpg")
    assert overlay.shape == (512, 512, 3) and np.abs(overlay.astype(int) - skimage_data.astronaut()).max() > 100
    (name, label), = json.loads((out / "dataset.json").read_text())["labels"]
    assert name == "astronaut.png"
    assert_eg3d_look_at_label(label)
    rec, = json.loads((out / "alignment.json").read_text())["images"]
    print(f"\nastronaut: yaw {rec['yaw']:.1f}, elevation {rec['elevation']:.1f}, roll removed {rec['roll_removed']:.1f}")
    assert abs(rec["yaw"]) < 20 and abs(rec["elevation"]) < 20


def test_bad_inputs_are_named_and_the_rest_is_processed(astronaut, tmp_path, capsys):
    photo = skimage_data.astronaut()
    iio.imwrite(tmp_path / "grey.png", photo.mean(2).astype(np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    iio.imwrite(tmp_path / "noface.png", (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8))
    small = photo[::6, ::6]                                   # the face's crop becomes ~24 px
    iio.imwrite(tmp_path / "small.png", np.ascontiguousarray(small))
    edge = np.ascontiguousarray(photo[80:330, 190:460])       # face in the top-left corner: 39% of its crop outside
    iio.imwrite(tmp_path / "edge.png", edge)
    head = photo[20:320, 100:350]                             # two people: the head and a 0.6x copy
    small_head = torch.nn.functional.interpolate(torch.from_numpy(head).permute(2, 0, 1)[None].float(),
                                                 scale_factor=0.6, mode="area")[0].permute(1, 2, 0)
    two = np.full((320, 520, 3), 180, np.uint8)
    two[:300, :250], two[:180, 260:410] = head, small_head.round().byte().numpy()
    iio.imwrite(tmp_path / "two.png", two)
    files = ["grey.png", "broken.jpg", "noface.png", "small.png", "edge.png", "two.png"]
    with pytest.warns(UserWarning, match="2 faces found; the largest is kept"):
        rc = align_main([str(astronaut)] + [str(tmp_path / f) for f in files] + ["--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    for f, reason in (("grey.png", "greyscale"), ("broken.jpg", "cannot read"), ("noface.png", "no face found"),
                      ("small.png", "face too small"), ("edge.png", "face too close to the border")):
        assert f"{f}: {reason}" in err, (f, err)
    labels = json.loads((tmp_path / "out" / "dataset.json").read_text())["labels"]
    assert [n for n, _ in labels] == ["astronaut.png", "two.png"]
    rec = json.loads((tmp_path / "out" / "alignment.json").read_text())
    assert rec["images"][1]["warnings"] and len(rec["errors"]) == 5
    assert rec["images"][1]["crop_center"][0] < 250   # the larger face (left) was kept


def test_video_frames_are_aligned_and_smoothed(tmp_path):
    yaws = np.linspace(-30, 30, 8)
    cams = torch.stack([camera_from_angles(float(y), 0.0) for y in yaws])
    frames = np.stack([to_uint8(x) for x in render_head(sample_head(9003, expression=0.3), cams, 256)["rgb"]])
    iio.imwrite(tmp_path / "clip.mp4", frames, fps=8, macro_block_size=1)
    rc = align_main(["--video", str(tmp_path / "clip.mp4"), "--frames", "8", "--out", str(tmp_path / "out"),
                     "--resolution", "128"])
    assert rc == 0
    rec = json.loads((tmp_path / "out" / "alignment.json").read_text())["images"]
    got = np.array([r["yaw"] for r in rec])
    assert len(rec) == 8 and np.all(np.diff(got) > 0)                    # a monotone turn
    assert np.median(np.abs(got - yaws)) < 5.0
    assert iio.imread(tmp_path / "out" / f"{rec[0]['file'][:-4]}.png").shape == (128, 128, 3)


def test_invert_a_photo_without_camera_aligns_it_first(astronaut, tmp_path):
    from inversion.cli import main as invert_main
    rc = invert_main(["--method", "w", "--image", str(astronaut), "--out", str(tmp_path / "run"), "--steps", "2",
                      "--fast", "--frames", "2", "--perceptual", "mse+ssim", "--no-progress"])
    run = tmp_path / "run"
    assert rc == 0 and (run / "aligned" / "dataset.json").exists() and (run / "aligned" / "masks" / "astronaut.png").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["input_view"]["psnr"]) and (run / "reconstruction.png").exists()


def test_aligned_target_in_memory_equals_the_written_folder(astronaut, tmp_path):
    """Photo -> Target in memory (what nerfgan-invert inverts) is exactly what load_target reads
    back from the folder nerfgan-align writes; a file that fails is an error, not a target."""
    from inversion.align import aligned_target, write_aligned
    from inversion.target import load_target
    a = Aligner(128)
    try:
        aligned, errors = a.align_files([astronaut, tmp_path / "missing.png"])
    finally:
        a.close()
    assert len(aligned) == 1 and len(errors) == 1 and "missing.png" in errors[0]
    target = aligned_target(aligned)
    write_aligned(tmp_path / "out", aligned, errors, a.convention)
    disk = load_target([tmp_path / "out" / "astronaut.png"], tmp_path / "out" / "dataset.json",
                       [tmp_path / "out" / "masks" / "astronaut.png"])
    assert target.images.shape == (1, 3, 128, 128) and target.masks.shape == (1, 1, 128, 128)
    for got, want in ((target.images, disk.images), (target.cameras, disk.cameras), (target.masks, disk.masks)):
        assert torch.equal(got, want)
    assert 0.05 < float(target.masks.mean()) < 0.95
    with pytest.raises(ValueError, match="at least one"):
        aligned_target([])
