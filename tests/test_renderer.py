"""The renderer package: OSG decoder vs EG3D's fixture, ImportanceRenderer vs a line-by-line port of
EG3D's renderer, kernels vs reference ops, chunking, memory planning, patching."""

from __future__ import annotations

import copy
import math
import warnings
import weakref

import pytest

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from nerfgan_kernels.ops import _reference
from nerfgan_kernels.render import (ImportanceRenderer, OSGDecoder, RaySampler, camera_rays,
                                    look_at_camera, patch_eg3d_generator, plan_chunks, ray_bytes,
                                    render_density, sample_mixed)
from helpers import fixture_path, rel_err
from test_rays import _eg3d_ray_limits_box

# Whole-render comparisons: features differ from EG3D's by float32 rounding (~1e-7), which moves
# the fine samples by about as much; 1e-5 relative leaves a 10x margin. Kernels vs reference
# gradients: 1e-4 (sums of ~1e3 terms in a different order).
TOL = 1e-5
GRAD_TOL = 1e-4

OPTIONS = dict(ray_start=2.25, ray_end=3.3, box_warp=1.0, depth_resolution=12,
               depth_resolution_importance=12, disparity_space_sampling=False,
               clamp_mode="softplus", deterministic=True)


def make_scene(N=2, res=8, channels=32, plane_res=16, seed=0):
    """Random planes, a random OSG decoder with a denser-than-default volume, and look-at rays."""
    g = torch.Generator().manual_seed(seed)
    planes = torch.randn(N, 3, channels, plane_res, plane_res, generator=g)
    torch.manual_seed(seed)
    decoder = OSGDecoder(channels)
    with torch.no_grad():
        decoder.net[2].bias[0] += 2.0
    h = math.pi / 2 + 0.4 * (torch.rand(N, generator=g) - 0.5)
    v = math.pi / 2 + 0.3 * (torch.rand(N, generator=g) - 0.5)
    origins, directions = camera_rays(look_at_camera(h, v), res)
    return planes, decoder, origins, directions


def random_draws(N, R, options, seed=1):
    g = torch.Generator().manual_seed(seed)
    jitter = torch.rand(N, R, options["depth_resolution"], 1, generator=g)
    u = torch.rand(N * R, options["depth_resolution_importance"], generator=g)
    return jitter, u


# ---- a line-by-line port of EG3D's renderer (the oracle) -----------------------------------------

def _eg3d_ray_marcher(colors, densities, depths, white_back):
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    densities_mid = (densities[:, :, :-1] + densities[:, :, 1:]) / 2
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    densities_mid = F.softplus(densities_mid - 1)
    alpha = 1 - torch.exp(-densities_mid * deltas)
    alpha_shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], -2)
    weights = alpha * torch.cumprod(alpha_shifted, -2)[:, :, :-1]
    composite_rgb = torch.sum(weights * colors_mid, -2)
    weight_total = weights.sum(2)
    composite_depth = torch.sum(weights * depths_mid, -2) / weight_total
    composite_depth = torch.nan_to_num(composite_depth, float("inf"))
    composite_depth = torch.clamp(composite_depth, torch.min(depths), torch.max(depths))
    if white_back:
        composite_rgb = composite_rgb + 1 - weight_total
    return composite_rgb * 2 - 1, composite_depth, weights


def _eg3d_sample_pdf(bins, weights, N_importance, det=False, eps=1e-5, u=None):
    N_rays, N_samples_ = weights.shape
    weights = weights + eps
    pdf = weights / torch.sum(weights, -1, keepdim=True)
    cdf = torch.cumsum(pdf, -1)
    cdf = torch.cat([torch.zeros_like(cdf[:, :1]), cdf], -1)
    if det:
        u = torch.linspace(0, 1, N_importance).expand(N_rays, N_importance)
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp_min(inds - 1, 0)
    above = torch.clamp_max(inds, N_samples_)
    inds_sampled = torch.stack([below, above], -1).view(N_rays, 2 * N_importance)
    cdf_g = torch.gather(cdf, 1, inds_sampled).view(N_rays, N_importance, 2)
    bins_g = torch.gather(bins, 1, inds_sampled).view(N_rays, N_importance, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom[denom < eps] = 1
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def _eg3d_sample_importance(z_vals, weights, N_importance, det, u):
    with torch.no_grad():
        batch_size, num_rays, samples_per_ray, _ = z_vals.shape
        z_vals = z_vals.reshape(batch_size * num_rays, samples_per_ray)
        weights = weights.reshape(batch_size * num_rays, -1)
        weights = F.max_pool1d(weights.unsqueeze(1).float(), 2, 1, padding=1)
        weights = F.avg_pool1d(weights, 2, 1).squeeze()
        weights = weights + 0.01
        z_vals_mid = 0.5 * (z_vals[:, :-1] + z_vals[:, 1:])
        return _eg3d_sample_pdf(z_vals_mid, weights[:, 1:-1], N_importance, det=det, u=u).detach().reshape(
            batch_size, num_rays, N_importance, 1)


def _eg3d_unify_samples(depths1, colors1, densities1, depths2, colors2, densities2):
    all_depths = torch.cat([depths1, depths2], dim=-2)
    all_colors = torch.cat([colors1, colors2], dim=-2)
    all_densities = torch.cat([densities1, densities2], dim=-2)
    _, indices = torch.sort(all_depths, dim=-2)
    all_depths = torch.gather(all_depths, -2, indices)
    all_colors = torch.gather(all_colors, -2, indices.expand(-1, -1, -1, all_colors.shape[-1]))
    all_densities = torch.gather(all_densities, -2, indices.expand(-1, -1, -1, 1))
    return all_depths, all_colors, all_densities


def _eg3d_linspace(start, stop, num):
    steps = torch.arange(num, dtype=torch.float32, device=start.device) / (num - 1)
    for _ in range(start.ndim):
        steps = steps.unsqueeze(-1)
    return start[None] + steps * (stop - start)[None]


def eg3d_render(planes, decoder, ray_origins, ray_directions, opts, jitter, u):
    """EG3D's ImportanceRenderer.forward with its random draws injected (jitter (N,R,D,1) U[0,1),
    u (N*R, n)); jitter=None means zero jitter, u=None means det=True."""
    D, n = opts["depth_resolution"], opts["depth_resolution_importance"]
    N, M, _ = ray_origins.shape
    if opts["ray_start"] == opts["ray_end"] == "auto":
        ray_start, ray_end, _ = _eg3d_ray_limits_box(ray_origins, ray_directions, opts["box_warp"])
        depths_coarse = _eg3d_linspace(ray_start, ray_end, D).permute(1, 2, 0, 3)
        depth_delta = (ray_end - ray_start) / (D - 1)
        if jitter is not None:
            depths_coarse = depths_coarse + jitter * depth_delta[..., None]
    else:
        depths_coarse = torch.linspace(opts["ray_start"], opts["ray_end"], D).reshape(1, 1, D, 1).repeat(N, M, 1, 1)
        if jitter is not None:
            depths_coarse = depths_coarse + jitter * ((opts["ray_end"] - opts["ray_start"]) / (D - 1))

    def run_model(depths):
        S = depths.shape[2]
        coords = (ray_origins.unsqueeze(-2) + depths * ray_directions.unsqueeze(-2)).reshape(N, -1, 3)
        dirs = ray_directions.unsqueeze(-2).expand(-1, -1, S, -1).reshape(N, -1, 3)
        out = decoder(_reference.triplane_sample(planes, coords, opts["box_warp"]), dirs)
        return out["rgb"].reshape(N, M, S, -1), out["sigma"].reshape(N, M, S, 1)

    white_back = opts.get("white_back", False)
    colors_coarse, densities_coarse = run_model(depths_coarse)
    _, _, weights = _eg3d_ray_marcher(colors_coarse, densities_coarse, depths_coarse, white_back)
    depths_fine = _eg3d_sample_importance(depths_coarse, weights, n, u is None, u)
    colors_fine, densities_fine = run_model(depths_fine)
    all_depths, all_colors, all_densities = _eg3d_unify_samples(
        depths_coarse, colors_coarse, densities_coarse, depths_fine, colors_fine, densities_fine)
    rgb, depth, weights = _eg3d_ray_marcher(all_colors, all_densities, all_depths, white_back)
    return rgb, depth, weights.sum(2)


def test_oracle_importance_sampling_matches_eg3d_fixture():
    """The port above is EG3D's (so the renderer tests below compare against EG3D)."""
    fx = load_file(fixture_path("fixture_importance.safetensors"))
    for det, u, key in [(True, None, "depths_fine_det"), (False, fx["u"], "depths_fine_u")]:
        fine = _eg3d_sample_importance(fx["depths_coarse"], fx["weights"], 48, det, u)
        assert rel_err(fine, fx[key]) <= 1e-6
    merged = _eg3d_unify_samples(fx["depths_coarse"], fx["colors_coarse"], fx["densities_coarse"],
                                 fx["depths_fine_det"], fx["colors_fine"], fx["densities_fine"])
    for out, key in zip(merged, ["all_depths", "all_colors", "all_densities"]):
        assert torch.equal(out, fx[key])


# ---- decoder ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_decoder():
    fx = load_file(fixture_path("fixture_decoder.safetensors"))
    decoder = OSGDecoder(32)
    decoder.load_state_dict({k[len("decoder."):]: v for k, v in fx.items() if k.startswith("decoder.")})
    return decoder, fx


def test_decoder_has_eg3d_parameter_names():
    names = {k: tuple(v.shape) for k, v in OSGDecoder(32).state_dict().items()}
    assert names == {"net.0.weight": (64, 32), "net.0.bias": (64,), "net.2.weight": (33, 64),
                     "net.2.bias": (33,)}


def test_decoder_matches_eg3d_fixture(fixture_decoder):
    decoder, fx = fixture_decoder
    with torch.no_grad():
        out = decoder(fx["features"], fx["directions"])
        assert rel_err(out["rgb"], fx["rgb"]) <= 1e-6
        assert rel_err(out["sigma"], fx["sigma"]) <= 1e-6
        reduced = decoder(fx["features"].mean(1))  # already plane-averaged features
        assert torch.equal(reduced["rgb"], out["rgb"]) and torch.equal(reduced["sigma"], out["sigma"])
        assert rel_err(decoder.density(fx["features"]), fx["sigma"]) <= 1e-6


def test_decoder_lr_mul_scales_the_stored_weights(fixture_decoder):
    decoder, fx = fixture_decoder
    slow = OSGDecoder(32, decoder_lr_mul=0.5)
    # effective weight = W * lr_mul / sqrt(in), effective bias = b * lr_mul: stored 2x -> same output
    slow.load_state_dict({k: v * 2 for k, v in decoder.state_dict().items()})
    with torch.no_grad():
        assert rel_err(slow(fx["features"])["sigma"], fx["sigma"]) <= 1e-6


# ---- renderer vs EG3D, kernels vs reference -----------------------------------------------------

@pytest.mark.parametrize("variant", ["deterministic", "injected", "auto", "white_back"])
def test_renderer_matches_eg3d_port(variant):
    planes, decoder, origins, directions = make_scene()
    N, R = origins.shape[:2]
    options = dict(OPTIONS)
    jitter = u = None
    if variant != "deterministic":
        jitter, u = random_draws(N, R, options)
        options.update(deterministic=False, stratified_jitter=jitter, importance_u=u)
    if variant == "auto":
        options.update(ray_start="auto", ray_end="auto")
    if variant == "white_back":
        options.update(white_back=True)
    with torch.no_grad():
        expected = eg3d_render(planes, decoder, origins, directions, options, jitter, u)
        for ops in ("reference", "kernels", "fused"):
            out = ImportanceRenderer(ops=ops)(planes, decoder, origins, directions, options)
            assert len(out) == 3
            for o, e in zip(out, expected):
                assert o.shape == e.shape
                assert rel_err(o, e) <= TOL, ops
    # The volume is neither empty nor opaque, so colours, depth and weights all matter.
    assert 0.05 < expected[2].mean() < 0.95


def _grads(renderer, planes, decoder, origins, directions, options, upstream):
    planes = planes.detach().requires_grad_(True)
    decoder.zero_grad()
    rgb, depth, wsum = renderer(planes, decoder, origins, directions, options)[:3]
    loss = (rgb * upstream[0]).sum() + (depth * upstream[1]).sum() + (wsum * upstream[2]).sum()
    loss.backward()
    return (rgb, depth, wsum), [planes.grad] + [p.grad.clone() for p in decoder.parameters()]


def test_kernels_and_reference_agree_with_gradients():
    planes, decoder, origins, directions = make_scene()
    N, R = origins.shape[:2]
    g = torch.Generator().manual_seed(5)
    upstream = (torch.randn(N, R, 32, generator=g), torch.randn(N, R, 1, generator=g),
                torch.randn(N, R, 1, generator=g))
    out_k, grads_k = _grads(ImportanceRenderer("kernels"), planes, decoder, origins, directions, OPTIONS, upstream)
    out_r, grads_r = _grads(ImportanceRenderer("reference"), planes, decoder, origins, directions, OPTIONS, upstream)
    out_f, grads_f = _grads(ImportanceRenderer("fused"), planes, decoder, origins, directions, OPTIONS, upstream)
    for out in (out_k, out_f):
        for a, b in zip(out, out_r):
            assert rel_err(a, b) <= TOL
    for grads in (grads_k, grads_f):
        for a, b in zip(grads, grads_r):
            assert torch.isfinite(a).all() and a.abs().max() > 0  # reaches planes and decoder
            assert rel_err(a, b) <= GRAD_TOL


@pytest.mark.parametrize("variant", ["exact", "masked", "samples", "broadcast"])
def test_fused_renderer_equals_reference_float64(variant):
    """ImportanceRenderer(ops="fused") == ops="reference" in float64 (importance sampling,
    every output and gradient); masked against the reference's masked render; return_samples
    gives the same per-sample tensors."""
    planes, decoder, origins, directions = make_scene()
    planes, origins, directions = planes.double(), origins.double(), directions.double()
    decoder = copy.deepcopy(decoder).double()
    if variant == "broadcast":
        planes = planes[:1]
    options = dict(OPTIONS)
    if variant == "masked":
        options.update(t_min=1e-2, alpha_min=1e-3)
    if variant == "samples":
        options.update(return_samples=True)
    N, R = origins.shape[:2]
    g = torch.Generator().manual_seed(7)
    upstream = tuple(torch.randn(N, R, k, generator=g, dtype=torch.float64) for k in (32, 1, 1))
    out_f, grads_f = _grads(ImportanceRenderer("fused"), planes, decoder, origins, directions,
                            options, upstream)
    out_r, grads_r = _grads(ImportanceRenderer("reference"), planes, decoder, origins,
                            directions, options, upstream)
    for a, b in zip(list(out_f) + grads_f, list(out_r) + grads_r):
        assert a.abs().max() > 0 and rel_err(a, b) <= 1e-9
    if variant == "samples":
        with torch.no_grad():
            sf = ImportanceRenderer("fused")(planes, decoder, origins, directions, options)[3]
            sr = ImportanceRenderer("reference")(planes, decoder, origins, directions, options)[3]
        assert sf.keys() == sr.keys()
        for key in sf:
            assert rel_err(sf[key], sr[key]) <= 1e-9, key


def test_fused_renderer_falls_back_with_one_warning():
    """What the fused op does not cover renders with "kernels" (same result), warning once."""
    from nerfgan_kernels import _ext

    planes, decoder, origins, directions = make_scene()
    origins = origins.clone().requires_grad_(True)
    _ext._warned.discard("fused:ray origins / directions require grad (the fused op has no "
                         "camera gradient)")
    with pytest.warns(RuntimeWarning, match="ops='kernels' because ray origins"):
        out = ImportanceRenderer("fused")(planes, decoder, origins, directions, OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ImportanceRenderer("fused")(planes, decoder, origins, directions, OPTIONS)
    expected = ImportanceRenderer("kernels")(planes, decoder, origins, directions, OPTIONS)
    for a, b, c in zip(out, again, expected):
        assert rel_err(a, c) <= 1e-6 and rel_err(b, c) <= 1e-6
    out[0].sum().backward()
    assert origins.grad is not None and origins.grad.abs().max() > 0


def test_density_masking_stays_close_to_exact():
    planes, decoder, origins, directions = make_scene()
    renderer = ImportanceRenderer()
    with torch.no_grad():
        exact = renderer(planes, decoder, origins, directions, dict(OPTIONS, return_samples=True))
        masked = renderer(planes, decoder, origins, directions,
                          dict(OPTIONS, t_min=1e-2, alpha_min=1e-3, return_samples=True))
    eps = 1e-2 + 2 * 23 * 1e-3  # composite's stated bound: t_min + 2 * (S-1) * alpha_min
    assert (exact[2] - masked[2]).abs().max() <= eps
    assert (exact[0] - masked[0]).abs().max() <= 2 * eps * 1.001
    skipped = (masked[3]["weights"] == 0).sum() - (exact[3]["weights"] == 0).sum()
    assert skipped > 0


# ---- chunking and randomness --------------------------------------------------------------------

def _render(planes, decoder, origins, directions, options, renderer=None):
    with torch.no_grad():
        return (renderer or ImportanceRenderer())(planes, decoder, origins, directions, options)


def test_one_plane_set_broadcasts_over_cameras():
    planes, decoder, origins, directions = make_scene()
    shared = _render(planes[:1], decoder, origins, directions, OPTIONS)
    expanded = _render(planes[:1].expand(2, -1, -1, -1, -1), decoder, origins, directions, OPTIONS)
    for a, b in zip(shared, expanded):
        assert a.shape == b.shape and rel_err(a, b) <= 1e-6


@pytest.mark.parametrize("variant", ["deterministic", "generator", "auto", "noise"])
def test_chunked_equals_unchunked(variant):
    planes, decoder, origins, directions = make_scene()
    N, R = origins.shape[:2]
    options = dict(OPTIONS, return_samples=True)
    if variant != "deterministic":
        options.update(deterministic=False)
    if variant == "auto":
        options.update(ray_start="auto", ray_end="auto")
    if variant == "noise":
        options.update(density_noise=0.5)
    per_ray = ImportanceRenderer().ray_bytes(options, decoder, grad=False)
    results = []
    for budget in (2**40, N * per_ray * 5):  # one chunk; chunks of 5 rays (the last one ragged)
        if variant != "deterministic":
            options["generator"] = torch.Generator().manual_seed(7)
        assert plan_chunks(N, R, per_ray, budget) == (R if budget == 2**40 else 5)
        results.append(_render(planes, decoder, origins, directions, dict(options, max_memory_bytes=budget)))
    (rgb, depth, wsum, samples), (rgb_c, depth_c, wsum_c, samples_c) = results
    assert rel_err(rgb_c, rgb) <= 1e-6 and rel_err(depth_c, depth) <= 1e-6
    assert rel_err(wsum_c, wsum) <= 1e-6
    assert torch.equal(samples_c["depths"], samples["depths"])
    # The depth clamp used the range of all rays: some ray's depth is clamped to the global range.
    assert depth.max() <= samples["depths"].max() and depth.min() >= samples["depths"].min()


class _BoxDecoder(torch.nn.Module):
    """Dense where the features are non-zero (inside the box), exactly empty outside
    (softplus(-51) * delta underflows alpha to 0)."""

    accepts_mean_features, uses_directions = True, False

    def forward(self, features, directions=None):
        return {"rgb": features, "sigma": 100 * features.abs().sum(-1, keepdim=True) - 50}


def test_depth_clamp_uses_the_global_range():
    """An empty ray's depth is EG3D's max over all merged depths of the whole render, also when
    its chunk's own samples end earlier."""
    planes, _, origins, directions = make_scene()
    origins = origins.clone()
    origins[:, :3] = 5.0  # these rays never meet the box: all weights 0
    decoder = _BoxDecoder()
    options = dict(OPTIONS, return_samples=True, deterministic=False,
                   generator=torch.Generator().manual_seed(0),
                   max_memory_bytes=2 * 4 * ImportanceRenderer().ray_bytes(OPTIONS, grad=False))
    _, depth, wsum, samples = _render(planes, decoder, origins, directions, options)
    assert (wsum[:, :3] == 0).all() and (wsum[:, 3:] > 0.5).all()
    depths = samples["depths"]
    assert depths[:, :4].max() < depths.max()  # the first chunk's own range is narrower
    assert (depth[:, :3] == depths.max()).all()


def test_deterministic_mode_is_reproducible_and_random_mode_is_not():
    planes, decoder, origins, directions = make_scene()
    a = _render(planes, decoder, origins, directions, OPTIONS)
    b = _render(planes, decoder, origins, directions, OPTIONS)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    random_options = dict(OPTIONS, deterministic=False)
    c = _render(planes, decoder, origins, directions, random_options)
    d = _render(planes, decoder, origins, directions, random_options)
    assert not torch.equal(c[0], d[0])


def test_return_samples_shapes():
    planes, decoder, origins, directions = make_scene()
    N, R = origins.shape[:2]
    D, n = OPTIONS["depth_resolution"], OPTIONS["depth_resolution_importance"]
    *outs, samples = _render(planes, decoder, origins, directions, dict(OPTIONS, return_samples=True))
    assert [tuple(o.shape) for o in outs] == [(N, R, 32), (N, R, 1), (N, R, 1)]
    shapes = {k: tuple(v.shape) for k, v in samples.items()}
    assert shapes == {"depths": (N, R, D + n, 1), "densities": (N, R, D + n, 1),
                      "weights": (N, R, D + n - 1, 1), "depths_coarse": (N, R, D, 1),
                      "weights_coarse": (N, R, D - 1, 1), "depths_fine": (N, R, n, 1)}
    assert (samples["depths"][:, :, 1:] >= samples["depths"][:, :, :-1]).all()
    assert torch.allclose(samples["weights"].sum(2), outs[2], atol=1e-6)
    coarse_only = _render(planes, decoder, origins, directions,
                          dict(OPTIONS, depth_resolution_importance=0, return_samples=True))
    assert set(coarse_only[3]) == {"depths", "densities", "weights"}
    assert coarse_only[3]["depths"].shape == (N, R, D, 1)


def test_checkpointed_render_has_the_same_gradients():
    planes, decoder, origins, directions = make_scene()
    N, R = origins.shape[:2]
    upstream = tuple(torch.randn(s, generator=torch.Generator().manual_seed(2))
                     for s in [(N, R, 32), (N, R, 1), (N, R, 1)])
    budget = N * 16 * ImportanceRenderer().ray_bytes(OPTIONS)
    plain = _grads(ImportanceRenderer(), planes, decoder, origins, directions, OPTIONS, upstream)
    ckpt = _grads(ImportanceRenderer(), planes, decoder, origins, directions,
                  dict(OPTIONS, checkpoint=True, max_memory_bytes=budget), upstream)
    for a, b in zip(plain[0] + tuple(plain[1]), ckpt[0] + tuple(ckpt[1])):
        assert rel_err(b, a) <= 1e-6


# ---- point queries ------------------------------------------------------------------------------

def test_render_density_equals_decoder_sigma_at_the_points():
    planes, decoder, origins, directions = make_scene()
    coords = (torch.rand(2, 300, 3, generator=torch.Generator().manual_seed(3)) - 0.5) * 1.2
    with torch.no_grad():
        expected = decoder(_reference.triplane_sample(planes, coords, 1.0))["sigma"]
        for ops in ("kernels", "reference"):
            sigma = render_density(planes, decoder, coords, 1.0, ops=ops)
            assert sigma.shape == (2, 300, 1)
            assert rel_err(sigma, expected) <= 1e-5
        mixed = sample_mixed(planes, decoder, coords, None, 1.0, max_memory_bytes=20_000)  # chunked
        assert rel_err(mixed["sigma"], expected) <= 1e-5 and mixed["rgb"].shape == (2, 300, 32)
        # ... and at a render's own sample points (the coarse samples are the first D).
        *_, samples = _render(planes, decoder, origins, directions,
                              dict(OPTIONS, depth_resolution_importance=0, return_samples=True))
        points = (origins.unsqueeze(-2) + samples["depths"] * directions.unsqueeze(-2)).reshape(2, -1, 3)
        sigma = ImportanceRenderer().render_density(planes, decoder, points, 1.0)
        assert rel_err(sigma, samples["densities"].reshape(2, -1, 1)) <= 1e-5


def test_render_density_gradients_reach_planes_coords_and_decoder():
    planes, decoder, _, _ = make_scene()
    planes.requires_grad_(True)
    coords = ((torch.rand(2, 50, 3) - 0.5) * 0.8).requires_grad_(True)
    decoder.zero_grad()
    render_density(planes, decoder, coords, 1.0).sum().backward()
    for g in (planes.grad, coords.grad, decoder.net[0].weight.grad):
        assert g is not None and g.abs().max() > 0


def test_run_model_has_eg3d_convention():
    planes, decoder, _, directions = make_scene()
    coords = torch.rand(2, 40, 3) - 0.5
    out = ImportanceRenderer().run_model(planes, decoder, coords, directions[:, :40], {"box_warp": 1.0})
    assert set(out) == {"rgb", "sigma"} and out["sigma"].shape == (2, 40, 1)


class _EG3DStyleDecoder(torch.nn.Module):
    """A decoder written for EG3D: takes per-plane features (N, 3, M, C) and uses the directions."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, sampled_features, ray_directions):
        self.seen.append((sampled_features.dim(), ray_directions.shape))
        return self.inner(sampled_features, ray_directions)


def test_renderer_serves_decoders_with_eg3d_conventions():
    planes, decoder, origins, directions = make_scene()
    wrapped = _EG3DStyleDecoder(decoder)
    a = _render(planes, wrapped, origins, directions, OPTIONS)
    b = _render(planes, decoder, origins, directions, OPTIONS)
    assert wrapped.seen[0] == (4, (2, 64 * 12, 3))
    for x, y in zip(a, b):
        assert rel_err(x, y) <= TOL


# ---- bad inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("change, name", [
    (dict(depth_resolution=3), "depth_resolution"),
    (dict(depth_resolution_importance=-1), "depth_resolution_importance"),
    (dict(ray_start=3.5), "ray_start"),
    (dict(ray_end="auto"), "ray_end"),
    (dict(box_warp=0), "box_warp"),
    (dict(clamp_mode="mipnerf"), "clamp_mode"),
    (dict(t_min=1.5), "t_min"),
    (dict(alpha_min=-1e-3), "alpha_min"),
    (dict(stratified_jitter=torch.zeros(2, 64, 11, 1)), "stratified_jitter"),
    (dict(importance_u=torch.zeros(2, 12)), "importance_u"),
    (dict(generator=3), "generator"),
    (dict(max_memory_bytes=0), "max_memory_bytes"),
])
def test_bad_rendering_options_raise_value_error_naming_the_key(change, name):
    planes, decoder, origins, directions = make_scene()
    with pytest.raises(ValueError, match=name):
        ImportanceRenderer()(planes, decoder, origins, directions, dict(OPTIONS, **change))


def test_bad_tensors_raise_value_error_naming_the_argument():
    planes, decoder, origins, directions = make_scene()
    r = ImportanceRenderer()
    cases = [((planes[:, :2], decoder, origins, directions, OPTIONS), "planes"),
             ((torch.cat([planes] * 3), decoder, origins, directions, OPTIONS), "planes"),
             ((planes, decoder, origins[..., :2], directions, OPTIONS), "ray_origins"),
             ((planes, decoder, origins, directions[:, :5], OPTIONS), "ray_directions"),
             ((planes, decoder, origins, directions, [OPTIONS]), "rendering_options")]
    for args, name in cases:
        with pytest.raises(ValueError, match=name):
            r(*args)
    with pytest.raises(ValueError, match="ops"):
        ImportanceRenderer(ops="cuda")
    with pytest.raises(ValueError, match="coords"):
        render_density(planes, decoder, torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="sampled_features"):
        decoder(torch.zeros(2, 5, 31))


# ---- memory planning ----------------------------------------------------------------------------

class LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages allocated under it and still alive (peak in .peak);
    the C++ kernels' allocations go through the dispatcher too, so they are counted."""

    def __init__(self):
        super().__init__()
        self.live, self.current, self.peak = {}, 0, 0

    def _free(self, key):
        self.current -= self.live.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if storage.nbytes() and key not in self.live and key not in inputs:  # not a view
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out


def _measure(renderer, planes, decoder, origins, directions, options, grad):
    """Peak bytes of the tensors a render allocates. The kernels get channels-last planes (the
    one copy per render that ray_bytes leaves out)."""
    if renderer.ops == "kernels":
        planes = planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    planes = planes.detach().requires_grad_(grad)
    with torch.set_grad_enabled(grad), LiveTensorBytes() as tracker:
        out = renderer(planes, decoder, origins, directions, options)
        del out
    return tracker.peak


@pytest.mark.parametrize("ops", ["kernels", "reference"])
@pytest.mark.parametrize("grad", [True, False])
def test_memory_model_bounds_measured_intermediates(ops, grad):
    """ray_bytes (what plan_chunks budgets with) is an upper bound of the measured peak of live
    tensors of a one-chunk render, and not more than 2x too pessimistic."""
    planes, decoder, origins, directions = make_scene()
    N, R = origins.shape[:2]
    options = dict(OPTIONS, depth_resolution=16, depth_resolution_importance=16)
    renderer = ImportanceRenderer(ops)
    measured = _measure(renderer, planes, decoder, origins, directions, options, grad)
    estimate = N * R * renderer.ray_bytes(options, decoder, grad=grad)
    assert measured <= estimate <= 2 * measured, (measured, estimate)


def test_chunked_render_stays_within_the_budget():
    """A render chunked to 1/8 of the one-chunk estimate measures within that budget plus the
    per-ray globals of the whole render (coarse depths, u, outputs, each ~D floats a ray, and
    what the fused op saves for the backward of every chunk: each sample's density)."""
    planes, decoder, origins, directions = make_scene()
    N, R = origins.shape[:2]
    renderer = ImportanceRenderer()
    D, n = OPTIONS["depth_resolution"], OPTIONS["depth_resolution_importance"]
    globals_bytes = N * R * 4 * (2 * (D + n + 32 + 4) + D + n)
    for grad, checkpoint in [(False, False), (True, True)]:
        budget = N * R * renderer.ray_bytes(OPTIONS, decoder, grad=grad) // 8
        options = dict(OPTIONS, max_memory_bytes=budget, checkpoint=checkpoint)
        measured = _measure(renderer, planes, decoder, origins, directions, options, grad)
        assert measured <= budget + globals_bytes, (grad, measured, budget)


def test_eg3d_512_batch_8_chunk_plan_fits_the_budget():
    """FFHQ-512 training-size render: batch 8, nrr 128 (16384 rays), 48 + 48 samples, 32 channels,
    with autograd recording. The planned chunk's intermediates (ray_bytes, checked against a
    measurement above) stay under 4 GiB, with both ops."""
    budget = 4 * 2**30
    options = dict(OPTIONS, depth_resolution=48, depth_resolution_importance=48)
    decoder = OSGDecoder(32)
    N, R = 8, 128 * 128
    for ops in ("kernels", "reference"):
        per_ray = ImportanceRenderer(ops).ray_bytes(options, decoder, grad=True)
        rays = plan_chunks(N, R, per_ray, budget)
        assert N * rays * per_ray <= budget
        assert rays < R  # the whole batch would not fit: the render really is chunked
        fit = budget // (N * per_ray)
        assert math.ceil(R / rays) == math.ceil(R / fit)  # as few chunks as fit, of equal size
        assert per_ray == ray_bytes(48, 48, reference_ops=ops == "reference", grad=True)


# ---- patching -----------------------------------------------------------------------------------

def test_patch_swaps_renderer_and_ray_sampler_in_place():
    class DummyG:
        def __init__(self):
            self.renderer, self.ray_sampler = "old renderer", "old sampler"
            self.rendering_kwargs = {"box_warp": 1}

    G = DummyG()
    kwargs = G.rendering_kwargs
    patch = patch_eg3d_generator(G)
    assert isinstance(G.renderer, ImportanceRenderer) and isinstance(G.ray_sampler, RaySampler)
    assert G.rendering_kwargs is kwargs
    assert patch.renderer == "old renderer" and patch.ray_sampler == "old sampler"
    patch.restore()
    assert G.renderer == "old renderer" and G.ray_sampler == "old sampler"
    mine = ImportanceRenderer("reference")
    patch = patch_eg3d_generator(G, mine, ray_sampler=False)
    assert G.renderer is mine and G.ray_sampler == "old sampler" and patch.ray_sampler is None
    with pytest.raises(ValueError, match="renderer"):
        patch_eg3d_generator(object())


def test_patch_works_on_a_module_generator():
    class ModuleG(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.renderer, self.ray_sampler = torch.nn.Identity(), torch.nn.Identity()

    G = ModuleG()
    old = patch_eg3d_generator(G).renderer
    assert isinstance(old, torch.nn.Identity)
    assert isinstance(dict(G.named_children())["renderer"], ImportanceRenderer)
