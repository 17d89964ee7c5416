"""The importance march of one chunk of rays, per computation path (what ``ImportanceRenderer``
runs for every chunk; docs/eg3d.md sections 5-7): decode the coarse depths, composite them for the
importance weights, draw the fine depths, decode them, merge, composite.

Each function returns rgb (N, Rc, O), depth (N, Rc, 1) not yet clamped, weights_sum (N, Rc, 1),
the min and max of the chunk's merged depths (0-d) and the per-sample dict (empty unless
``opt.return_samples``); the renderer clamps the depth to the range over all chunks.
"""

from __future__ import annotations

import math

import torch

from ..ops import decode_triplane, merge_samples, render_triplane, sample_pdf
from .options import RenderOptions
from .paths import features, op_module


def decode_depths(ops: str, planes, decoder, origins, directions, depths, opt: RenderOptions, noise):
    """Decoder output at o + t*d for depths (N, Rc, S, 1): colours (N, Rc, S, O), raw
    densities (N, Rc, S, 1)."""
    N, Rc, S, _ = depths.shape
    coords = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(N, -1, 3)
    dirs = None
    if getattr(decoder, "uses_directions", True):
        dirs = directions.unsqueeze(-2).expand(-1, -1, S, -1).reshape(N, -1, 3)
    out = decoder(features(ops, planes, decoder, coords, opt.box_warp), dirs)
    colors = out["rgb"].reshape(N, Rc, S, out["rgb"].shape[-1])
    densities = out["sigma"].reshape(N, Rc, S, 1)
    if noise is not None:
        densities = densities + noise
    return colors, densities

def render_chunk(decoder, opt: RenderOptions, ops_name: str, planes, origins, directions,
                  depths_coarse, u, noise_coarse, noise_fine):
    """Render rays (N, Rc, 3) with the per-op chain of ``ops_name`` ("kernels" or
    "reference"). Returns rgb (N, Rc, O), depth (N, Rc, 1) not yet clamped, weights_sum
    (N, Rc, 1), the min and max of this chunk's merged depths (0-d), and the per-sample dict
    (empty unless opt.return_samples)."""
    ops = op_module(ops_name)
    march = dict(white_back=opt.white_back, t_min=opt.t_min, alpha_min=opt.alpha_min,
                 depth_range=(-math.inf, math.inf))
    colors, densities = decode_depths(ops_name, planes, decoder, origins, directions,
                                     depths_coarse, opt, noise_coarse)
    depths = depths_coarse
    samples = {}
    if opt.n_importance > 0:
        with torch.no_grad():
            _, _, weights_coarse = ops.composite(colors, densities, depths_coarse, **march)
            depths_fine = ops.sample_pdf(depths_coarse, weights_coarse, opt.n_importance, u=u,
                                         deterministic=opt.deterministic and u is None)
        colors_fine, densities_fine = decode_depths(ops_name, planes, decoder, origins,
                                                   directions, depths_fine, opt, noise_fine)
        depths, (colors, densities) = ops.merge_samples(
            depths_coarse, [colors, densities], depths_fine, [colors_fine, densities_fine])
        del colors_fine, densities_fine  # without autograd their memory is free now
        if opt.return_samples:
            samples.update(depths_coarse=depths_coarse, weights_coarse=weights_coarse,
                           depths_fine=depths_fine)
    rgb, depth, weights = ops.composite(colors, densities, depths, **march)
    if opt.return_samples:
        samples.update(depths=depths, densities=densities, weights=weights)
    lo, hi = torch.aminmax(depths.detach()) if depths.numel() else (depths.new_zeros(()),) * 2
    return rgb, depth, weights.sum(2), lo, hi, samples

def render_chunk_fused(decoder, opt: RenderOptions, planes, origins, directions,
                        depths_coarse, u):
    """``render_chunk`` on the fused op: the coarse pass gives its weights and densities (no
    grad), the final pass renders the merged samples, the coarse ones decoded again only
    where their colour has a weight."""
    march = dict(box_warp=opt.box_warp, white_back=opt.white_back, t_min=opt.t_min,
                 alpha_min=opt.alpha_min, depth_range=(-math.inf, math.inf))
    depths, known, samples = depths_coarse, None, {}
    if opt.n_importance > 0:
        with torch.no_grad():
            _, _, weights_coarse, _, densities_coarse = render_triplane(
                planes, decoder, origins, directions, depths_coarse, return_densities=True,
                **march)
            depths_fine = sample_pdf(depths_coarse, weights_coarse, opt.n_importance, u=u,
                                         deterministic=opt.deterministic and u is None)
            # The coarse samples' densities are known: the final pass decodes such a sample
            # only if its colour gets a weight (nerfacc's skipping of empty space).
            depths, (known,) = merge_samples(
                depths_coarse, [densities_coarse], depths_fine,
                [torch.full_like(depths_fine, math.nan)])
        if opt.return_samples:
            samples.update(depths_coarse=depths_coarse, weights_coarse=weights_coarse,
                           depths_fine=depths_fine)
    rgb, depth, weights, weights_sum = render_triplane(
        planes, decoder, origins, directions, depths, known_densities=known, **march)
    if opt.return_samples:
        N, Rc, S, _ = depths.shape
        coords = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(N, -1, 3)
        densities = decode_triplane(planes, decoder, coords, opt.box_warp)[1]
        samples.update(depths=depths, densities=densities.reshape(N, Rc, S, 1),
                       weights=weights)
    lo, hi = torch.aminmax(depths.detach()) if depths.numel() else (depths.new_zeros(()),) * 2
    return rgb, depth, weights_sum, lo, hi, samples
