"""EG3D's importance renderer on this package's kernels (docs/eg3d.md sections 4-7).

``ImportanceRenderer`` has EG3D's interface, ``forward(planes, decoder, ray_origins,
ray_directions, rendering_options) -> (rgb, depth, weights_sum)``, so EG3D-derived code can swap it
in (see ``patch.patch_eg3d_generator``). Three computation paths (``ops``):

    "fused" (default): per chunk of rays
        render_triplane over the coarse depths (no grad, its weights only) -> sample_pdf ->
        merge_samples (depths only) -> render_triplane over the merged depths
      the coarse samples are decoded again in the final pass (cheaper than keeping them), and
      nothing of size rays x samples x C is stored for the backward (the op recomputes).
    "kernels": per chunk of rays
        coarse depths -> triplane_sample(reduce="mean") -> decoder -> composite (coarse weights)
        -> sample_pdf -> fine depths -> triplane_sample -> decoder -> merge_samples -> composite
      (the decoder in PyTorch, its activations kept by autograd).
    "reference": the "kernels" chain on the pure-PyTorch references.

What the fused op does not cover falls back to "kernels" with one warning: a decoder that is not
EG3D's OSG decoder, ``density_noise > 0``, ray origins / directions that require grad, planes
that are not float32 / float64, or a device without its kernel.

Chunking over rays never changes the result: the random draws (stratified jitter, importance
``u``, density noise) are made once for all rays, and the depth clamp uses the min/max of the
merged depths over **all** rays (EG3D clamps to the range of the whole depth tensor): each chunk is
composited with an infinite clamp range and the clamp is applied once at the end.
"""

from __future__ import annotations


import torch
import torch.utils.checkpoint

from .. import _checks
from .march import render_chunk, render_chunk_fused
from .memory import DEFAULT_MAX_MEMORY_BYTES, decoder_sizes, plan_chunks, ray_bytes
from .options import RenderOptions, parse_options
from .paths import check_ops, fused_decoder, kernel_layout, op_module, resolve_ops
from .points import render_density, sample_mixed
from .rays import ray_box_intersect
from .sampling import stratified_depths


def _rand(shape, opt: RenderOptions, device, dtype, normal=False) -> torch.Tensor:
    gen = opt.generator
    draw = torch.randn if normal else torch.rand
    return draw(shape, generator=gen, dtype=dtype,
                device=device if gen is None else gen.device).to(device)


def generate_planes() -> torch.Tensor:
    """EG3D's plane axes (3, 3, 3) (kept as ``ImportanceRenderer.plane_axes`` for code that reads
    it; the ops hard-code the same projection: (x, y), (x, z), (z, x))."""
    return torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                         [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
                         [[0, 0, 1], [0, 1, 0], [1, 0, 0]]], dtype=torch.float32)


class ImportanceRenderer(torch.nn.Module):
    """EG3D's ``ImportanceRenderer`` on this package's kernels (no parameters).

    Args:
        ops: "fused" (the fused renderer ``render_triplane``; what it does not cover renders
            with "kernels" after one warning, see the module docstring), "kernels" (the per-op
            kernels, the decoder in PyTorch) or "reference" (the pure-PyTorch references, for
            tests and benchmarks).
        max_memory_bytes: default budget for one chunk's intermediates (rendering_options'
            ``max_memory_bytes`` overrides it per call).

    ``forward(planes, decoder, ray_origins, ray_directions, rendering_options)``:
        planes (Np, 3, C, H, W) with Np == N or 1; ray_origins, ray_directions (N, R, 3) (unit
        directions, so depths are distances); decoder: EG3D's call convention
        ``decoder(features, directions) -> {'rgb': (N, M, O), 'sigma': (N, M, 1)}``.
        Returns rgb (N, R, O) in EG3D's [-1, 1] convention, depth (N, R, 1), weights_sum
        (N, R, 1); plus a dict of per-sample tensors when ``return_samples``.

    rendering_options (EG3D's keys): ray_start, ray_end (floats, or both 'auto' for the limits of
    the box of side box_warp, see ``ray_box_intersect``), box_warp, depth_resolution,
    depth_resolution_importance (0: coarse pass only), disparity_space_sampling, clamp_mode
    ('softplus' only), white_back, density_noise (Gaussian noise added to raw sigma). Other EG3D
    keys are ignored. New keys:
        deterministic: no randomness: jitter 0, importance u = linspace(0, 1, n), no density noise.
        stratified_jitter: injected (N, R, D, 1) U[0,1) fractions of the bin width.
        importance_u: injected (N*R, n) (batch-major rows, as EG3D draws it) or (N, R, n).
        generator: torch.Generator for the random draws (default torch's global RNG).
        t_min, alpha_min: density masking of ``composite`` (default 0, 0 = exact EG3D).
        return_samples: also return {'depths' (N,R,S,1), 'densities' (N,R,S,1) raw, 'weights'
            (N,R,S-1,1), 'depths_coarse' (N,R,D,1), 'weights_coarse' (N,R,D-1,1), 'depths_fine'
            (N,R,n,1)} (S = D + n; the coarse/fine entries only with importance sampling).
        max_memory_bytes: chunk the rays so that one chunk's intermediates (``ray_bytes``) stay
            under this budget. With autograd recording, every chunk's saved activations are kept
            for the backward unless ``checkpoint`` is set.
        checkpoint: with autograd recording, keep only each chunk's outputs and recompute the
            chunk in the backward (activation checkpointing), so the budget also bounds training
            memory, at the price of a second forward. "fused" always recomputes (ignored there).
    """

    def __init__(self, ops: str = "fused", max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES):
        super().__init__()
        self.ops = check_ops(ops)
        self.max_memory_bytes = max_memory_bytes
        self.plane_axes = generate_planes()

    # -- EG3D's methods, for code written against its renderer

    def run_model(self, planes, decoder, sample_coordinates, sample_directions, options):
        """EG3D's ``run_model``: decoder output {'rgb', 'sigma'} at points (N, M, 3), plus
        ``options['density_noise']`` Gaussian noise on sigma."""
        out = sample_mixed(planes, decoder, sample_coordinates, sample_directions,
                           options["box_warp"], ops=self.ops,
                           max_memory_bytes=options.get("max_memory_bytes", self.max_memory_bytes))
        if options.get("density_noise", 0) > 0:
            out["sigma"] = out["sigma"] + torch.randn_like(out["sigma"]) * options["density_noise"]
        return out

    def render_density(self, planes, decoder, coords, box_warp: float = 1.0):
        """Raw density (N, M, 1) at coords (N, M, 3); see the module-level ``render_density``."""
        return render_density(planes, decoder, coords, box_warp, ops=self.ops,
                              max_memory_bytes=self.max_memory_bytes)

    def sample_mixed(self, planes, decoder, coords, directions=None, box_warp: float = 1.0):
        """{'rgb', 'sigma'} at coords; see the module-level ``sample_mixed``."""
        return sample_mixed(planes, decoder, coords, directions, box_warp, ops=self.ops,
                            max_memory_bytes=self.max_memory_bytes)

    def ray_bytes(self, rendering_options: dict, decoder=None, itemsize: int = 4,
                  grad: bool = True, ops: str | None = None) -> int:
        """``ray_bytes`` for these options, the ops path (default this renderer's) and the
        decoder's sizes."""
        ops = self.ops if ops is None else ops
        n_imp = rendering_options.get("depth_resolution_importance", 0)
        C, H, O = decoder_sizes(decoder)
        return ray_bytes(rendering_options["depth_resolution"], n_imp, n_features=C,
                         hidden_dim=H, output_dim=O, itemsize=itemsize, reference_ops=ops == "reference", grad=grad,
                         fused=ops == "fused")

    # -- the render

    def forward(self, planes, decoder, ray_origins, ray_directions, rendering_options):
        _checks.check_tensor(planes, "planes", "(N, 3, C, H, W)", dim=5, sizes={1: 3})
        _checks.check_tensor(ray_origins, "ray_origins", "(N, R, 3)", dim=3, sizes={2: 3})
        N, R, _ = ray_origins.shape
        _checks.check_tensor(ray_directions, "ray_directions", f"(N, R, 3) = ({N}, {R}, 3)", dim=3,
                             sizes={0: N, 1: R, 2: 3})
        _checks.check_float(ray_origins, "ray_origins")
        _checks.check_same(ray_origins, "ray_origins", ray_directions, "ray_directions")
        _checks.check_same(planes, "planes", ray_origins, "ray_origins")
        if planes.shape[0] not in (1, N):
            raise ValueError(f"planes must have batch size 1 or N = {N} (that of ray_origins), got "
                             f"{planes.shape[0]}")
        opt = parse_options(rendering_options, N, R, self.max_memory_bytes)
        device, dtype = ray_origins.device, ray_origins.dtype
        D, n = opt.depth_resolution, opt.n_importance

        # Everything random or global is decided once for all rays.
        if opt.auto_limits:
            start, end, _ = ray_box_intersect(ray_origins, ray_directions, opt.box_warp)
        else:
            start, end = opt.ray_start, opt.ray_end
        depths_coarse = stratified_depths(
            N, R, D, start, end, disparity_space=opt.disparity_space,
            deterministic=opt.deterministic, jitter=opt.jitter, generator=opt.generator,
            device=device, dtype=dtype)
        u = None if opt.u is None else opt.u.detach().to(device=device, dtype=dtype)
        if n > 0 and u is None and not opt.deterministic:
            u = _rand((N, R, n), opt, device, dtype)
        noise = (None, None)
        if opt.density_noise > 0 and not opt.deterministic:
            noise = (_rand((N, R, D, 1), opt, device, dtype, normal=True) * opt.density_noise,
                     _rand((N, R, n, 1), opt, device, dtype, normal=True) * opt.density_noise
                     if n > 0 else None)

        ops = resolve_ops(self.ops, planes, decoder, ray_origins, ray_directions,
                           0.0 if opt.deterministic else opt.density_noise)
        planes = kernel_layout(planes, ops)
        grad = torch.is_grad_enabled()
        step = plan_chunks(N, R, self.ray_bytes(rendering_options, decoder, ray_origins.element_size(),
                                                grad, ops), opt.max_memory_bytes)
        fused = fused_decoder(decoder) if ops == "fused" else None
        results = []
        for s in range(0, max(R, 1), step):
            sl = slice(s, s + step)
            args = (planes, ray_origins[:, sl], ray_directions[:, sl], depths_coarse[:, sl],
                    None if u is None else u[:, sl])
            if fused is not None:
                results.append(render_chunk_fused(fused, opt, *args))
                continue
            args += tuple(None if t is None else t[:, sl] for t in noise)
            if opt.checkpoint and grad:
                results.append(torch.utils.checkpoint.checkpoint(
                    render_chunk, decoder, opt, ops, *args, use_reentrant=False))
            else:
                results.append(render_chunk(decoder, opt, ops, *args))

        rgb = torch.cat([r[0] for r in results], dim=1)
        depth = torch.cat([r[1] for r in results], dim=1)
        weights_sum = torch.cat([r[2] for r in results], dim=1)
        lo = torch.stack([r[3] for r in results]).min()
        hi = torch.stack([r[4] for r in results]).max()
        depth = torch.clamp(depth, lo, hi)  # EG3D: the range of the whole merged depth tensor
        if not opt.return_samples:
            return rgb, depth, weights_sum
        samples = {k: torch.cat([r[5][k] for r in results], dim=1) for k in results[0][5]}
        return rgb, depth, weights_sum, samples

    # -- thin EG3D-named wrappers

    def sample_stratified(self, ray_origins, ray_start, ray_end, depth_resolution,
                          disparity_space_sampling=False):
        """EG3D's ``sample_stratified`` (global RNG): (N, R, D, 1) depths."""
        N, R, _ = ray_origins.shape
        return stratified_depths(N, R, depth_resolution, ray_start, ray_end,
                                 disparity_space=disparity_space_sampling,
                                 device=ray_origins.device, dtype=ray_origins.dtype)

    def sample_importance(self, z_vals, weights, N_importance, det=False):
        """EG3D's ``sample_importance``: fine depths (N, R, n, 1), unsorted, no gradient."""
        with torch.no_grad():
            return op_module(self.ops).sample_pdf(z_vals, weights, N_importance, deterministic=det)

    def unify_samples(self, depths1, colors1, densities1, depths2, colors2, densities2):
        """EG3D's ``unify_samples``: the two sample lists merged in depth order."""
        depths, (colors, densities) = op_module(self.ops).merge_samples(
            depths1, [colors1, densities1], depths2, [colors2, densities2])
        return depths, colors, densities
