"""Neighbourhood latents, random cameras (``random_cameras``: NeRFInvertor's neighbour cameras,
``cameras.neighbour_cameras``), and neighbourhood-batch rendering for NeRFInvertor's
regularizers.

``neighborhood_batch`` queries K latents x V cameras' ray samples with the tuned generator G and
the frozen G0. All V cameras' points are concatenated into one point set per latent (G's own
coarse + importance samples: coords (K, M, 3)) or shared by the K latents (stratified samples:
coords (1, M, 3), the broadcast form), so one query is one launch of the kernels on planes
(K, ...); the points are split into as few chunks as fit ``max_memory_bytes``. G0's outputs at those points are
computed once per step and reused by every explicit term (density-weighted colour, density,
depth). Each chunk runs under activation checkpointing, so neither generator's (rays x samples x
channels) tensors of the whole batch exist at once: only one chunk's, and only its scalar loss
sums are kept for the backward.
"""

from __future__ import annotations

import torch

from nerfgan_kernels.render import camera_rays
from nerfgan_kernels.render.cameras import neighbour_cameras as random_cameras  # noqa: F401 (public name)
from nerfgan_kernels.render.compositing import weighted_colours
from nerfgan_kernels.render.memory import NEIGHBOURHOOD_SAMPLE_BYTES, plan_chunks

from .protocol import NeRFGenerator


def neighbor_latents(G, w_pivot: torch.Tensor, c: torch.Tensor, k: int, alpha: float,
                     truncation_psi: float = 1.0) -> torch.Tensor:
    """w_n = w* + alpha (w_rand - w*) / ||w_rand - w*|| for k random z (norm over all ws rows).

    w_pivot (1, num_ws, w_dim), c (1, 25) conditioning camera -> (k, num_ws, w_dim), detached."""
    with torch.no_grad():
        z = torch.randn(k, G.z_dim, device=w_pivot.device)
        w_rand = G.mapping(z, c.expand(k, -1), truncation_psi=truncation_psi)
        direction = w_rand - w_pivot
        norm = direction.flatten(1).norm(dim=1).clamp_min(1e-8).view(k, 1, 1)
        return w_pivot + alpha * direction / norm


def calibrate_radius(G, c: torch.Tensor, n: int = 64, fraction: float = 0.5, seed: int = 0) -> float:
    """W-space neighbourhood radius: ``fraction`` x the median distance of mapped random latents
    from w_avg (num_ws rows together), i.e. neighbours stay within the bulk of the W distribution.
    Reported in every NeRFInvertor Result as 'neighbor_alpha'."""
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(c.device)
        ws = G.mapping(z, c.expand(n, -1))
        dist = (ws - G.w_avg.view(1, 1, -1)).flatten(1).norm(dim=1)
        return float(fraction * dist.median())


def ray_samples(cameras: torch.Tensor, resolution: int, n_samples: int, near: float, far: float,
                jitter: bool = True):
    """Stratified points on the cameras' rays. -> coords (V, R, S, 3), dirs (V, R, S, 3), depths
    (V, R, S, 1), R = resolution**2."""
    origins, dirs = camera_rays(cameras, resolution)
    V, R, _ = origins.shape
    t = torch.linspace(0, 1, n_samples + 1, device=origins.device)[:-1]
    u = torch.rand(V, R, n_samples, 1) if jitter else torch.full((V, R, n_samples, 1), 0.5)
    depths = near + (far - near) * (t.view(1, 1, -1, 1) + u.to(origins.device) / n_samples)
    coords = origins[:, :, None] + depths * dirs[:, :, None]
    return coords, dirs[:, :, None].expand_as(coords), depths


def neighborhood_batch(G: NeRFGenerator, G0: NeRFGenerator, ws: torch.Tensor, cameras: torch.Tensor, *, resolution: int = 128,
                       n_samples: int = 48, max_memory_bytes: float = 256 * 2 ** 20,
                       masks: torch.Tensor | str | None = None, mask_threshold: float = 0.5,
                       checkpoint: bool = True, sample_source: str = "generator") -> dict:
    """Explicit geometric regularization terms for K latents x V cameras.

    ws (K, num_ws, w_dim) neighbour latents; cameras (V, 25). masks: None (every ray counts),
    a foreground tensor (V, 1, res, res) shared by the K latents, or "reference": per latent and
    ray, foreground where the frozen G0's accumulated opacity > ``mask_threshold`` (computed in the
    same G0 pass, at no extra cost). With a mask the explicit terms are averaged over foreground
    rays only, and 'background_opacity' is G's mean opacity on the background rays (the masked
    term of docs/algorithms.md section 3: EG3D has no background layer).

    Returns scalar tensors (differentiable w.r.t. G): 'weighted_colour' mean L1 of weight x rgb per
    sample, 'density' mean L1 of raw sigma, 'depth' mean L1 of depth, 'background_opacity' (0
    without masks); plus 'chunks', the number of chunks (= calls to each generator's point query),
    and 'foreground_fraction' (float).

    sample_source: "generator" (docs/algorithms.md: the tuned G's own samples, ``G.ray_samples``:
    per latent, coarse + importance depths for tri-plane generators; stratified where it has none) or "stratified"
    (``n_samples`` jittered depths shared by all latents: one broadcast point set).
    """
    if sample_source not in ("generator", "stratified"):
        raise ValueError(f"sample_source must be 'generator' or 'stratified', got {sample_source!r}")
    if ws.dim() != 3:
        raise ValueError(f"ws must be (K, num_ws, w_dim), got {tuple(ws.shape)}")
    K, V, R = ws.shape[0], cameras.shape[0], resolution * resolution
    if isinstance(masks, str) and masks != "reference":
        raise ValueError(f"masks must be None, a (V, 1, res, res) tensor or 'reference', got {masks!r}")
    if isinstance(masks, torch.Tensor) and masks.numel() != V * R:
        raise ValueError(f"masks must be (V, 1, {resolution}, {resolution}) = {V * R} values, "
                         f"got {tuple(masks.shape)}")
    own = G.ray_samples(ws, cameras, resolution) if sample_source == "generator" else None
    if own is not None:  # per latent: (K, V*R, S, .); chunks slice dim 1
        coords, dirs, depths = own
        S = depths.shape[2]
    else:  # shared by all latents: (V*R, S, .); chunks slice dim 0
        coords, dirs, depths = ray_samples(cameras, resolution, n_samples, *G.ray_range)
        S = depths.shape[2]
        coords, dirs, depths = coords.reshape(V * R, S, 3), dirs.reshape(V * R, S, 3), depths.reshape(V * R, S, 1)
    per_latent = own is not None
    depth_range = (float(depths.min()), float(depths.max()))  # global, so chunking changes nothing
    given_fg = None
    if isinstance(masks, torch.Tensor):  # (1, V*R), broadcast over latents
        given_fg = (masks.reshape(1, V * R) > 0.5).to(depths.dtype).to(depths.device)
    rays_per_chunk = plan_chunks(K, V * R, S * NEIGHBOURHOOD_SAMPLE_BYTES, max_memory_bytes)
    query_g = G.point_query(ws)
    with torch.no_grad():
        query_g0 = G0.point_query(ws)
    totals = {"weighted_colour": 0, "density": 0, "depth": 0, "background_opacity": 0}
    n_chunks, n_fg, n_rays = 0, 0.0, 0.0

    def flat(t):  # (Rc, S, 3) -> (1, Rc*S, 3); (K, Rc, S, 3) -> (K, Rc*S, 3)
        return t.reshape(t.shape[0] if per_latent else 1, -1, 3)

    def chunk_terms(c, d, dep, fg_chunk, wc0, sigma0, depth0):
        out = query_g(flat(c), flat(d))
        wc, wsum, depth, sigma = weighted_colours(out, dep, depth_range)
        rw = fg_chunk.view(fg_chunk.shape[0], -1, 1, 1)  # (1 or K, Rc, 1, 1)
        return torch.stack([((wc - wc0).abs() * rw).sum(), ((sigma - sigma0).abs() * rw).sum(),
                            ((depth - depth0).abs() * rw[..., 0]).sum(),
                            (wsum[..., 0] * (1 - rw[..., 0, 0])).sum()])

    for s in range(0, V * R, rays_per_chunk):
        sl = (slice(None), slice(s, s + rays_per_chunk)) if per_latent else slice(s, s + rays_per_chunk)
        with torch.no_grad():  # G0 once per chunk; only its 3-channel products are kept
            ref = query_g0(flat(coords[sl]), flat(dirs[sl]))
            wc0, wsum0, depth0, sigma0 = weighted_colours(ref, depths[sl], depth_range)
            del ref
            if masks is None:
                fg_chunk = torch.ones(1, wc0.shape[1], device=wc0.device, dtype=wc0.dtype)
            elif given_fg is not None:
                fg_chunk = given_fg[:, s:s + rays_per_chunk]
            else:
                fg_chunk = (wsum0[..., 0] > mask_threshold).to(wc0.dtype)  # (K, Rc)
            n_fg += float(fg_chunk.sum()) * (K if fg_chunk.shape[0] == 1 else 1)
            n_rays += K * wc0.shape[1]
        args = (coords[sl], dirs[sl], depths[sl], fg_chunk, wc0, sigma0, depth0)
        if checkpoint and torch.is_grad_enabled():
            t = torch.utils.checkpoint.checkpoint(chunk_terms, *args, use_reentrant=False)
        else:
            t = chunk_terms(*args)
        for i, name in enumerate(totals):
            totals[name] = totals[name] + t[i]
        n_chunks += 1
    n_bg = max(n_rays - n_fg, 1.0)
    n_fg_safe = max(n_fg, 1.0)
    return {"weighted_colour": totals["weighted_colour"] / (n_fg_safe * (S - 1) * 3),
            "density": totals["density"] / (n_fg_safe * S),
            "depth": totals["depth"] / n_fg_safe,
            "background_opacity": totals["background_opacity"] / n_bg,
            "chunks": n_chunks, "foreground_fraction": n_fg / max(n_rays, 1.0)}
