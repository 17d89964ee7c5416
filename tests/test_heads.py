"""Procedural heads (inversion.data.heads): determinism, exact depth, masks, framing, inputs."""

from __future__ import annotations

import math

import pytest
import torch

from inversion.data.heads import (BACKGROUND_DEPTH, HeadParams, HeadScene, render_head,
                                  render_scene, sample_head, yaw_cameras)
from nerfgan_kernels.render import camera_rays, look_at_camera


@pytest.fixture(scope="module")
def frontal():
    return yaw_cameras([0.0])


def test_same_seed_same_head_bit_for_bit(frontal):
    assert sample_head(3) == sample_head(3)
    a = render_head(sample_head(3), frontal, 48)
    b = render_head(sample_head(3), frontal, 48)
    for k in ("rgb", "depth", "mask"):
        assert torch.equal(a[k], b[k]), k


def test_different_seeds_differ(frontal):
    a = render_head(sample_head(0), frontal, 48)["rgb"]
    b = render_head(sample_head(1), frontal, 48)["rgb"]
    assert (a - b).abs().mean() > 0.02


def test_expression_keeps_identity_and_changes_mouth(frontal):
    neutral, smile = sample_head(5, expression=0.0), sample_head(5, expression=1.0)
    assert neutral.replace(expression=1.0) == smile
    a = render_head(neutral, frontal, 64)["rgb"]
    b = render_head(smile, frontal, 64)["rgb"]
    diff = (a - b).abs().sum(1)[0]  # (H, W)
    rows = diff.sum(1).nonzero().squeeze(1)
    assert rows.numel() > 0
    assert rows.float().mean() > 32  # the change is in the lower half of the image (the mouth)


def test_accessories_only_when_asked():
    plain = [sample_head(s) for s in range(20)]
    assert not any(p.glasses or p.hat for p in plain)
    ood = [sample_head(s, accessories=True) for s in range(20)]
    assert all(p.glasses or p.hat for p in ood)
    assert any(p.glasses for p in ood) and any(p.hat for p in ood)
    # The identity does not depend on the accessories.
    assert ood[4].replace(glasses=False, hat=False, hat_colour=plain[4].hat_colour) == plain[4]


def test_shapes_dtypes_ranges_and_mask(frontal):
    cams = yaw_cameras([-30.0, 0.0, 30.0])
    out = render_head(sample_head(2), cams, 40)
    assert out["rgb"].shape == (3, 3, 40, 40) and out["rgb"].dtype == torch.float32
    assert out["depth"].shape == (3, 1, 40, 40) and out["depth"].dtype == torch.float32
    assert out["mask"].shape == (3, 1, 40, 40) and out["mask"].dtype == torch.float32
    assert out["rgb"].min() >= -1 and out["rgb"].max() <= 1
    assert torch.equal(out["mask"], (out["depth"] < BACKGROUND_DEPTH).float())
    bg = out["mask"] == 0
    assert torch.all(out["rgb"].masked_select(bg) == 1.0)  # white background
    single = render_head(sample_head(2), cams[1], 40)  # a (25,) camera
    assert torch.equal(single["depth"], out["depth"][1:2])
    grey = render_head(sample_head(2), frontal, 40, background=(0.0, -0.5, 0.5), background_depth=4.0)
    assert torch.all(grey["depth"].masked_select(grey["mask"] == 0) == 4.0)
    assert torch.all(grey["rgb"][:, 1].masked_select(grey["mask"][:, 0] == 0) == -0.5)


def _ray_sphere(o, d, centre, radius):
    """Analytic first intersection of unit rays with a sphere (nan where missed)."""
    oc = o - torch.tensor(centre, dtype=o.dtype)
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - radius ** 2)
    return -b - disc.sqrt()


class SphereScene:
    """A single sphere: the scene interface of ``render_scene`` (sdf, albedo), for checking the
    tracer against the analytic ray-sphere intersection."""

    def __init__(self, centre=(0.0, 0.0, 0.0), radius: float = 0.3, colour=(0.8, 0.5, 0.3)):
        self.centre, self.radius, self.colour = tuple(centre), float(radius), tuple(colour)

    def sdf(self, p):
        return (p - p.new_tensor(self.centre)).norm(dim=-1) - self.radius

    def albedo(self, p):
        return p.new_tensor(self.colour).expand(p.shape)


def test_depth_matches_analytic_sphere():
    cams = torch.cat([yaw_cameras([0.0, 35.0]), look_at_camera(math.pi / 2, math.pi / 2 - 0.4)])
    centre, radius = (0.05, -0.02, 0.1), 0.3
    out = render_scene(SphereScene(centre, radius), cams, 64)
    o, d = camera_rays(cams, 64)
    t = _ray_sphere(o.double(), d.double(), centre, radius).reshape(3, 1, 64, 64)
    analytic_hit = ~torch.isnan(t)
    fg = out["mask"] > 0
    # The masks agree except possibly at grazing rays on the silhouette.
    assert (fg ^ analytic_hit).float().mean() < 0.002
    both = fg & analytic_hit
    err = (out["depth"].double() - t).abs()[both]
    assert err.mean() < 0.002 and err.mean() < 1e-5, err.mean()
    assert err.max() < 1e-3, err.max()


def test_depth_lies_on_the_head_surface():
    cams = yaw_cameras([-40.0, 0.0, 25.0])
    for params in (sample_head(7), sample_head(11, accessories=True)):
        out = render_head(params, cams, 48)
        o, d = camera_rays(cams, 48)
        fg = out["mask"].reshape(3, -1) > 0
        p = o[fg] + out["depth"].reshape(3, -1)[fg][:, None] * d[fg]
        sdf = HeadScene(params).sdf(p)
        assert sdf.abs().max() < 1e-4, sdf.abs().max()
        # Nothing in front of the hit: sample the ray before it and check it is outside.
        for frac in (0.9, 0.99):
            t0 = o[fg] + (out["depth"].reshape(3, -1)[fg][:, None] - 0.3 * (1 - frac)) * d[fg]
            assert (HeadScene(params).sdf(t0) > -1e-4).float().mean() > 0.995


def test_heads_stay_inside_the_box():
    g = torch.linspace(-0.62, 0.62, 63)
    grid = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), dim=-1).reshape(-1, 3)
    outside = (grid.abs() > 0.5).any(dim=-1)
    for seed in range(12):
        params = sample_head(seed, expression=1.0, accessories=seed % 2 == 1)
        d = HeadScene(params).sdf(grid)
        assert (d < 0).sum() > 1000
        assert not bool((d[outside] < 0).any()), seed


def test_views_from_yaw_minus45_to_45_show_a_head():
    cams = yaw_cameras([-45.0, -22.5, 0.0, 22.5, 45.0])
    for seed in (0, 9):
        out = render_head(sample_head(seed), cams, 32)
        frac = out["mask"].mean(dim=(1, 2, 3))
        assert torch.all((frac > 0.2) & (frac < 0.8)), frac
        # Face toward +z: the frontal view's centre pixel hits the face near z ~ 0.2 in front.
        centre = out["depth"][2, 0, 16, 16]
        assert 2.3 < centre < 2.6, centre


def test_bad_inputs_raise_value_error_naming_the_argument(frontal):
    p = sample_head(0)
    with pytest.raises(ValueError, match="seed"):
        sample_head(-1)
    with pytest.raises(ValueError, match="seed"):
        sample_head(1.5)
    with pytest.raises(ValueError, match="expression"):
        sample_head(0, expression=1.5)
    with pytest.raises(ValueError, match="params"):
        render_head({"seed": 0}, frontal, 32)
    with pytest.raises(ValueError, match="camera"):
        render_head(p, frontal[:, :24], 32)
    with pytest.raises(ValueError, match="camera"):
        render_head(p, frontal.tolist(), 32)
    with pytest.raises(ValueError, match="resolution"):
        render_head(p, frontal, 0)
    with pytest.raises(ValueError, match="background"):
        render_head(p, frontal, 32, background=(1.0, 2.0, 0.0))
    with pytest.raises(ValueError, match="background_depth"):
        render_head(p, frontal, 32, background_depth=-1.0)
    assert isinstance(p, HeadParams)
