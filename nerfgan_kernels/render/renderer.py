"""EG3D's importance renderer on this package's kernels (shared docs/eg3d-reference.md sections 4-7).

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

import math
from dataclasses import dataclass

import torch
import torch.utils.checkpoint

from .. import _checks
from .rays import ray_box_intersect
from .sampling import stratified_depths

#: Default budget for the per-chunk intermediates of one render.
DEFAULT_MAX_MEMORY_BYTES = 2 * 2**30

OPS = ("fused", "kernels", "reference")


def _op_module(ops: str):
    """The module that provides triplane_sample / composite / sample_pdf / merge_samples /
    render_triplane: the package (its kernels) or the pure-PyTorch references. Looked up at call
    time."""
    if ops in ("fused", "kernels"):
        import nerfgan_kernels
        return nerfgan_kernels
    from ..ops import _reference
    return _reference


def _check_ops(ops) -> str:
    if ops not in OPS:
        raise ValueError(f"ops must be one of {OPS}, got {ops!r}")
    return ops


# ---------------------------------------------------------------------------- memory planning

def ray_bytes(depth_resolution: int, n_importance: int, *, n_features: int = 32,
              hidden_dim: int = 64, output_dim: int = 32, itemsize: int = 4,
              reference_ops: bool = False, grad: bool = True, fused: bool = False) -> int:
    """Upper estimate of the peak bytes one ray needs while its chunk renders.

    fused (``ops="fused"``): only per-ray vectors live, with or without grad: coarse depths and
    jitter (2 D), u (n), coarse weights (D - 1), fine depths (n), merged depths and their int64
    index (3 S), final weights (S - 1) and, in the backward, their zero upstream gradient (S - 1),
    rgb O, depth, weights_sum and the op's stats (2 + S: the ray's sums and each sample's density,
    2 + D for the coarse pass), and in the backward the same again for the upstream gradients
    (O + 2). The op's own scratch does not grow with the chunk (the CPU
    backward scatters per 2048 rays).

    Counted from the code, in elements (C features, H hidden, O outputs, S = D + n samples):
      per sample of a decode pass, what stays ``kept`` to the end of the chunk and what is
      ``transient`` while the pass runs:
        grad:    kept = coords 3 + features C + fc0 out H + softplus out H + fc1 out 1+O +
                 sigmoid out O + rgb O + weight 1; transient = t*d 3 + the rgb scaling O.
        no grad: kept = fc1 out 1+O (sigma is a view of it) + rgb O; transient = the largest set
                 alive at once: coords 3 + features C + fc0 out H + softplus out H.
        The reference ops add grid_sample's per-plane output 3C and the projected points to the
        transient, and keep its grid (6) with grad.
      merge: the merged colours O while the inputs are alive, depths, densities, int64 index.
      composite: kernels 2 per interval; reference 2*O + 10 (mid-point colours, products).
      The peak is the largest of the coarse pass, the fine pass on top of the coarse pass's kept
      tensors, the merge and the final composite; plus per-ray tensors made once for all rays
      (coarse depths, jitter, u, the outputs and their concatenation).
    Not included: one channels-last copy of the planes per render (kernels). Checked against a
    measurement of live tensor storage in tests/test_renderer.py.

    Args:
        grad: autograd records the render (decoder activations are kept for the backward).
    """
    C, H, O, D, n = n_features, hidden_dim, output_dim, depth_resolution, n_importance
    S = D + n
    if fused:
        return int((4 * D + 2 * n + 6 * S + 2 * O + 8) * itemsize)
    if grad:  # activations accumulate over the passes
        kept, transient = 3 + C + 2 * H + (1 + O) + 2 * O + 1, 3 + O
        if reference_ops:
            kept, transient = kept + 6, transient + 3 * C + 15
    else:  # a pass's activations die one after the other; only its outputs stay
        kept = (1 + O) + O
        transient = max(3 + C + 2 * H, 3 + 15 + 4 * C if reference_ops else 0)
    march = 2 * O + 10 if reference_ops else 2
    peaks = [D * (kept + transient)]
    if n > 0:
        peaks += [D * kept + n * (kept + transient), S * (kept + O + 4)]
        after_merge = S * ((kept + 4) if grad else (O + 4))
    else:
        after_merge = S * (kept if grad else (O + 1))
    peaks.append(after_merge + S * march)
    # Per ray, made once or kept to the end: coarse depths and jitter, u, coarse weights, fine
    # depths, the outputs and their concatenation.
    return int((max(peaks) + 3 * D + 2 * n + 4 * O + 8) * itemsize)


def plan_chunks(num_batch: int, num_rays: int, bytes_per_ray: int, max_memory_bytes: int) -> int:
    """Rays per chunk (each chunk holds all ``num_batch`` items): the fewest chunks with
    num_batch * rays * bytes_per_ray <= max_memory_bytes, made equal in size (the last one may
    be smaller). At least 1 ray (even over budget), at most num_rays."""
    if not (isinstance(max_memory_bytes, (int, float)) and max_memory_bytes > 0):
        raise ValueError(f"max_memory_bytes must be a positive number, got {max_memory_bytes!r}")
    fit = int(max(1, min(max(num_rays, 1), max_memory_bytes // max(1, num_batch * bytes_per_ray))))
    chunks = -(-max(num_rays, 1) // fit)
    return -(-max(num_rays, 1) // chunks)


# ---------------------------------------------------------------------------- options

@dataclass
class _Options:
    ray_start: object  # float or (N, R, 1) tensor
    ray_end: object
    auto_limits: bool
    box_warp: float
    depth_resolution: int
    n_importance: int
    disparity_space: bool
    white_back: bool
    density_noise: float
    deterministic: bool
    jitter: torch.Tensor | None
    u: torch.Tensor | None
    generator: torch.Generator | None
    t_min: float
    alpha_min: float
    return_samples: bool
    max_memory_bytes: float
    checkpoint: bool


def _number(options: dict, key: str, default=None, *, low=None, high=None, integer=False):
    """options[key] (or ``default`` when absent or None), checked to be a finite number in
    [low, high); ValueError naming the key otherwise."""
    value = options.get(key)
    value = default if value is None else value
    if value is None:
        raise ValueError(f"rendering_options['{key}'] is required")
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) \
            or (low is not None and value < low) or (high is not None and value >= high):
        rng = f" in [{low}, {high})" if high is not None else (f" >= {low}" if low is not None else "")
        what = "an int" if integer else "a number"
        raise ValueError(f"rendering_options['{key}'] must be {what}{rng}, got {value!r}")
    return value


def _parse_options(options, N: int, R: int, default_memory: float) -> _Options:
    if not isinstance(options, dict):
        raise ValueError(f"rendering_options must be a dict, got {type(options).__name__}")
    clamp_mode = options.get("clamp_mode", "softplus")
    if clamp_mode != "softplus":
        raise ValueError(f"rendering_options['clamp_mode'] must be 'softplus' (the only mode EG3D's "
                         f"released models use), got {clamp_mode!r}")
    start, end = options.get("ray_start"), options.get("ray_end")
    auto = start == "auto" and end == "auto"
    if not auto:
        for key in ("ray_start", "ray_end"):
            _number(options, key)
        if not start < end:
            raise ValueError(f"rendering_options['ray_start'] must be less than ['ray_end'] (or "
                             f"both 'auto'), got {start!r}, {end!r}")
        if options.get("disparity_space_sampling", False) and start <= 0:
            raise ValueError(f"rendering_options['ray_start'] must be positive with "
                             f"disparity_space_sampling, got {start!r}")
    box_warp = _number(options, "box_warp", low=0)
    if box_warp <= 0:
        raise ValueError(f"rendering_options['box_warp'] must be positive, got {box_warp!r}")
    n_imp = _number(options, "depth_resolution_importance", 0, low=0, integer=True)
    D = _number(options, "depth_resolution", low=4 if n_imp > 0 else 2, integer=True)
    jitter = options.get("stratified_jitter")
    if jitter is not None:
        _checks.check_tensor(jitter, "rendering_options['stratified_jitter']",
                             f"(N, R, D, 1) = ({N}, {R}, {D}, 1)", dim=4, sizes={0: N, 1: R, 2: D, 3: 1})
    u = options.get("importance_u")
    if u is not None:
        name = "rendering_options['importance_u']"
        _checks.check_tensor(u, name, f"(N*R, n) or (N, R, n) = ({N * R}, {n_imp})",
                             sizes={-1: n_imp})
        if u.dim() == 2 and u.shape[0] == N * R:
            u = u.reshape(N, R, n_imp)
        elif u.shape != (N, R, n_imp):
            raise ValueError(f"{name} must have shape (N*R, n) or (N, R, n) = ({N * R}, {n_imp}) "
                             f"or ({N}, {R}, {n_imp}), got {tuple(u.shape)}")
    generator = options.get("generator")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"rendering_options['generator'] must be a torch.Generator, got "
                         f"{type(generator).__name__}")
    return _Options(
        ray_start=start, ray_end=end, auto_limits=auto, box_warp=float(box_warp),
        depth_resolution=D, n_importance=n_imp,
        disparity_space=bool(options.get("disparity_space_sampling", False)),
        white_back=bool(options.get("white_back", False)),
        density_noise=float(_number(options, "density_noise", 0.0, low=0)),
        deterministic=bool(options.get("deterministic", False)),
        jitter=jitter, u=u, generator=generator,
        t_min=float(_number(options, "t_min", 0.0, low=0, high=1)),
        alpha_min=float(_number(options, "alpha_min", 0.0, low=0, high=1)),
        return_samples=bool(options.get("return_samples", False)),
        max_memory_bytes=_number(options, "max_memory_bytes", default_memory, low=1),
        checkpoint=bool(options.get("checkpoint", False)),
    )


def _rand(shape, opt: _Options, device, dtype, normal=False) -> torch.Tensor:
    gen = opt.generator
    draw = torch.randn if normal else torch.rand
    return draw(shape, generator=gen, dtype=dtype,
                device=device if gen is None else gen.device).to(device)


# ---------------------------------------------------------------------------- point queries

def _features(ops: str, planes, decoder, coords, box_warp: float) -> torch.Tensor:
    """Tri-plane features at coords, plane-averaged (N, M, C) for decoders that accept that,
    else EG3D's per-plane (N, 3, M, C)."""
    reduce = "mean" if getattr(decoder, "accepts_mean_features", False) else "none"
    return _op_module(ops).triplane_sample(planes, coords, box_warp, reduce)


def _kernel_layout(planes: torch.Tensor, ops: str) -> torch.Tensor:
    """For the kernels: planes as a (N, 3, C, H, W) view of a contiguous (N, 3, H, W, C) tensor,
    the layout they read, so that per-chunk calls do not each make that copy (differentiable).
    Under autocast, float32 planes are cast to the autocast dtype in the same copy for "kernels"
    (what the op's autocast rule would do on every call); the fused op computes in the planes'
    float32 (its activations never reach memory, so a narrower dtype would save nothing)."""
    if ops == "reference":
        return planes
    device, dtype = planes.device.type, planes.dtype
    if ops == "kernels" and dtype == torch.float32 and torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    cl = planes.permute(0, 1, 3, 4, 2)
    if cl.is_contiguous() and dtype == planes.dtype:
        return planes
    return cl.to(dtype, memory_format=torch.contiguous_format).permute(0, 1, 4, 2, 3)


def _fused_decoder(decoder):
    """The decoder as the fused op's ``TriplaneDecoder``, or None when it is not OSG-like."""
    from ..ops.fused import TriplaneDecoder
    try:
        return TriplaneDecoder.from_module(decoder)
    except ValueError:
        return None


def _fused_unsupported(planes, decoder, ray_origins=None, ray_directions=None,
                       density_noise: float = 0.0) -> str | None:
    """Why ``ops="fused"`` cannot render this (the renderer then uses "kernels"), or None."""
    from .._ext import cuda_available, extension_available
    if not extension_available():
        return "the compiled extension is not available"
    if planes.device.type not in ("cpu", "cuda") or (planes.device.type == "cuda"
                                                      and not cuda_available()):
        return f"render_triplane has no kernel for {planes.device} tensors here"
    if planes.dtype not in (torch.float32, torch.float64):
        return f"planes are {planes.dtype} (the fused op takes float32 / float64)"
    if ray_origins is not None and ray_origins.dtype != planes.dtype:
        return f"planes are {planes.dtype} but rays {ray_origins.dtype} (the fused op takes one dtype)"
    if _fused_decoder(decoder) is None:
        return f"the decoder ({type(decoder).__name__}) is not EG3D's OSG decoder"
    if density_noise > 0:
        return "rendering_options['density_noise'] > 0"
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (ray_origins, ray_directions)):
        return "ray origins / directions require grad (the fused op has no camera gradient)"
    return None


def _resolve_ops(ops: str, *args, **kwargs) -> str:
    """``ops``, or "kernels" (with one warning per reason) where "fused" does not cover the call."""
    if ops != "fused":
        return ops
    reason = _fused_unsupported(*args, **kwargs)
    if reason is None:
        return ops
    from .._ext import _warn_once
    _warn_once(f"fused:{reason}", f"nerfgan_kernels: ImportanceRenderer(ops='fused') renders with "
                                  f"ops='kernels' because {reason}")
    return "kernels"


def _check_points(planes, coords, name: str = "coords") -> None:
    _checks.check_tensor(planes, "planes", "(N, 3, C, H, W)", dim=5, sizes={1: 3})
    _checks.check_tensor(coords, name, "(N, M, 3)", dim=3, sizes={2: 3})
    _checks.check_same(planes, "planes", coords, name)
    _checks.broadcast_batch(planes.shape[0], "planes", coords.shape[0], name)


def _point_chunks(M: int, N: int, decoder, itemsize: int, max_memory_bytes) -> int:
    C = getattr(decoder, "n_features", 32)
    H = getattr(decoder, "hidden_dim", 64)
    O = getattr(decoder, "output_dim", 32)
    per_point = itemsize * (6 + 4 * C + 2 * H + 3 * O + 1)
    return plan_chunks(N, M, per_point, max_memory_bytes)


def sample_mixed(planes: torch.Tensor, decoder, coords: torch.Tensor, directions=None,
                 box_warp: float = 1.0, *, ops: str = "fused",
                 max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES) -> dict:
    """Decoder output at points: EG3D's ``run_model`` / ``G.sample_mixed`` on given planes.

    planes (Np, 3, C, H, W), coords (N, M, 3) (Np == N or Np == 1), directions (N, M, 3) or None
    (unused by the OSG decoder). Returns {'rgb': (N, M, O), 'sigma': (N, M, 1) raw density}.
    Points are processed in chunks of at most ``max_memory_bytes`` of intermediates. With
    ``ops="fused"``, an OSG decoder and coords without gradient the points go through
    ``decode_triplane`` (no gathered features kept); otherwise ``ops="kernels"``.
    """
    _check_points(planes, coords)
    N, M = max(planes.shape[0], coords.shape[0]), coords.shape[1]
    step = _point_chunks(M, N, decoder, planes.element_size(), max_memory_bytes)
    ops = _point_ops(ops, planes, decoder, coords)
    planes = _kernel_layout(planes, ops)
    fused = _fused_decoder(decoder) if ops == "fused" else None
    kernels = _op_module(ops)
    outs = []
    for s in range(0, max(M, 1), step):
        if fused is not None:
            rgb, sigma = kernels.decode_triplane(planes, fused, coords[:, s:s + step], box_warp)
            outs.append({"rgb": rgb, "sigma": sigma})
            continue
        dirs = None if directions is None else directions[:, s:s + step]
        outs.append(decoder(_features(ops, planes, decoder, coords[:, s:s + step], box_warp), dirs))
    return {k: torch.cat([o[k] for o in outs], dim=1) for k in outs[0]}


def render_density(planes: torch.Tensor, decoder, coords: torch.Tensor, box_warp: float = 1.0, *,
                   ops: str = "fused", max_memory_bytes: float = DEFAULT_MAX_MEMORY_BYTES):
    """Raw density (before the ray marcher's shifted softplus) at points, for the geometric
    regularizers of inversion and EG3D's ``sample_density``.

    planes (Np, 3, C, H, W), coords (N, M, 3) (Np == N or Np == 1) -> sigma (N, M, 1), equal to
    ``decoder(features)['sigma']``. Gradients flow to planes, coords and the decoder. With
    ``ops="fused"``, an OSG decoder and coords without gradient the points go through
    ``decode_triplane``; otherwise through ``ops="kernels"`` (decoders with a ``density`` method
    then skip the colour outputs).
    """
    _check_points(planes, coords)
    N, M = max(planes.shape[0], coords.shape[0]), coords.shape[1]
    step = _point_chunks(M, N, decoder, planes.element_size(), max_memory_bytes)
    ops = _point_ops(ops, planes, decoder, coords)
    planes = _kernel_layout(planes, ops)
    fused = _fused_decoder(decoder) if ops == "fused" else None
    kernels = _op_module(ops)
    sigmas = []
    for s in range(0, max(M, 1), step):
        if fused is not None:
            sigmas.append(kernels.decode_triplane(planes, fused, coords[:, s:s + step], box_warp)[1])
            continue
        feats = _features(ops, planes, decoder, coords[:, s:s + step], box_warp)
        sigmas.append(decoder.density(feats) if hasattr(decoder, "density")
                      else decoder(feats, None)["sigma"])
    return torch.cat(sigmas, dim=1)


def _point_ops(ops: str, planes, decoder, coords) -> str:
    """The ops of a point query: "fused" falls back to "kernels" (silently: a point query is
    exact either way) for coords that need a gradient, which decode_triplane does not give."""
    ops = _check_ops(ops)
    if ops == "fused" and torch.is_grad_enabled() and coords.requires_grad:
        return "kernels"
    return _resolve_ops(ops, planes, decoder)


# ---------------------------------------------------------------------------- the renderer

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
        self.ops = _check_ops(ops)
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
        return ray_bytes(rendering_options["depth_resolution"], n_imp,
                         n_features=getattr(decoder, "n_features", 32),
                         hidden_dim=getattr(decoder, "hidden_dim", 64),
                         output_dim=getattr(decoder, "output_dim", 32),
                         itemsize=itemsize, reference_ops=ops == "reference", grad=grad,
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
        opt = _parse_options(rendering_options, N, R, self.max_memory_bytes)
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

        ops = _resolve_ops(self.ops, planes, decoder, ray_origins, ray_directions,
                           0.0 if opt.deterministic else opt.density_noise)
        planes = _kernel_layout(planes, ops)
        grad = torch.is_grad_enabled()
        step = plan_chunks(N, R, self.ray_bytes(rendering_options, decoder, ray_origins.element_size(),
                                                grad, ops), opt.max_memory_bytes)
        fused = _fused_decoder(decoder) if ops == "fused" else None
        results = []
        for s in range(0, max(R, 1), step):
            sl = slice(s, s + step)
            args = (planes, ray_origins[:, sl], ray_directions[:, sl], depths_coarse[:, sl],
                    None if u is None else u[:, sl])
            if fused is not None:
                results.append(self._render_chunk_fused(fused, opt, *args))
                continue
            args += tuple(None if t is None else t[:, sl] for t in noise)
            if opt.checkpoint and grad:
                results.append(torch.utils.checkpoint.checkpoint(
                    self._render_chunk, decoder, opt, ops, *args, use_reentrant=False))
            else:
                results.append(self._render_chunk(decoder, opt, ops, *args))

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

    def _decode(self, ops: str, planes, decoder, origins, directions, depths, opt: _Options, noise):
        """Decoder output at o + t*d for depths (N, Rc, S, 1): colours (N, Rc, S, O), raw
        densities (N, Rc, S, 1)."""
        N, Rc, S, _ = depths.shape
        coords = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(N, -1, 3)
        dirs = None
        if getattr(decoder, "uses_directions", True):
            dirs = directions.unsqueeze(-2).expand(-1, -1, S, -1).reshape(N, -1, 3)
        out = decoder(_features(ops, planes, decoder, coords, opt.box_warp), dirs)
        colors = out["rgb"].reshape(N, Rc, S, out["rgb"].shape[-1])
        densities = out["sigma"].reshape(N, Rc, S, 1)
        if noise is not None:
            densities = densities + noise
        return colors, densities

    def _render_chunk(self, decoder, opt: _Options, ops_name: str, planes, origins, directions,
                      depths_coarse, u, noise_coarse, noise_fine):
        """Render rays (N, Rc, 3) with the per-op chain of ``ops_name`` ("kernels" or
        "reference"). Returns rgb (N, Rc, O), depth (N, Rc, 1) not yet clamped, weights_sum
        (N, Rc, 1), the min and max of this chunk's merged depths (0-d), and the per-sample dict
        (empty unless opt.return_samples)."""
        ops = _op_module(ops_name)
        march = dict(white_back=opt.white_back, t_min=opt.t_min, alpha_min=opt.alpha_min,
                     depth_range=(-math.inf, math.inf))
        colors, densities = self._decode(ops_name, planes, decoder, origins, directions,
                                         depths_coarse, opt, noise_coarse)
        depths = depths_coarse
        samples = {}
        if opt.n_importance > 0:
            with torch.no_grad():
                _, _, weights_coarse = ops.composite(colors, densities, depths_coarse, **march)
                depths_fine = ops.sample_pdf(depths_coarse, weights_coarse, opt.n_importance, u=u,
                                             deterministic=opt.deterministic and u is None)
            colors_fine, densities_fine = self._decode(ops_name, planes, decoder, origins,
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

    def _render_chunk_fused(self, decoder, opt: _Options, planes, origins, directions,
                            depths_coarse, u):
        """``_render_chunk`` on the fused op: the coarse pass gives its weights and densities (no
        grad), the final pass renders the merged samples, the coarse ones decoded again only
        where their colour has a weight."""
        import nerfgan_kernels as ops
        march = dict(box_warp=opt.box_warp, white_back=opt.white_back, t_min=opt.t_min,
                     alpha_min=opt.alpha_min, depth_range=(-math.inf, math.inf))
        depths, known, samples = depths_coarse, None, {}
        if opt.n_importance > 0:
            with torch.no_grad():
                _, _, weights_coarse, _, densities_coarse = ops.render_triplane(
                    planes, decoder, origins, directions, depths_coarse, return_densities=True,
                    **march)
                depths_fine = ops.sample_pdf(depths_coarse, weights_coarse, opt.n_importance, u=u,
                                             deterministic=opt.deterministic and u is None)
                # The coarse samples' densities are known: the final pass decodes such a sample
                # only if its colour gets a weight (nerfacc's skipping of empty space).
                depths, (known,) = ops.merge_samples(
                    depths_coarse, [densities_coarse], depths_fine,
                    [torch.full_like(depths_fine, math.nan)])
            if opt.return_samples:
                samples.update(depths_coarse=depths_coarse, weights_coarse=weights_coarse,
                               depths_fine=depths_fine)
        rgb, depth, weights, weights_sum = ops.render_triplane(
            planes, decoder, origins, directions, depths, known_densities=known, **march)
        if opt.return_samples:
            N, Rc, S, _ = depths.shape
            coords = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(N, -1, 3)
            densities = ops.decode_triplane(planes, decoder, coords, opt.box_warp)[1]
            samples.update(depths=depths, densities=densities.reshape(N, Rc, S, 1),
                           weights=weights)
        lo, hi = torch.aminmax(depths.detach()) if depths.numel() else (depths.new_zeros(()),) * 2
        return rgb, depth, weights_sum, lo, hi, samples

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
            return _op_module(self.ops).sample_pdf(z_vals, weights, N_importance, deterministic=det)

    def unify_samples(self, depths1, colors1, densities1, depths2, colors2, densities2):
        """EG3D's ``unify_samples``: the two sample lists merged in depth order."""
        depths, (colors, densities) = _op_module(self.ops).merge_samples(
            depths1, [colors1, densities1], depths2, [colors2, densities2])
        return depths, colors, densities
