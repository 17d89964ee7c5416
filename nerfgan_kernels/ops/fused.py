"""The fused tri-plane renderer's decoder contract (issue 18): EG3D's OSG decoder as tensors.

``render_triplane`` / ``decode_triplane`` take the decoder as its *effective* tensors: EG3D's
``FullyConnectedLayer`` keeps raw weights and applies ``weight_gain`` / ``bias_gain`` in its
forward; ``TriplaneDecoder.from_module`` applies them (differentiably, so gradients reach the
module's raw parameters) for our ``OSGDecoder`` and for EG3D's own, which has the same
structure: ``net = Sequential(FC(C, hidden), Softplus(), FC(hidden, 1 + F))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Largest decoder the fused kernels take (hidden units, output features).
MAX_HIDDEN = 128
MAX_OUTPUT = 64


@dataclass(frozen=True)
class TriplaneDecoder:
    """EG3D's OSG decoder as effective tensors: mean of the planes' features f (C) ->
    h = softplus(weight0 @ f + bias0) (hidden) -> out = weight1 @ h + bias1 (1 + F);
    density = out[0] (raw), features = sigmoid(out[1:]) * (1 + 2e-3) - 1e-3.

    weight0 (hidden, C), bias0 (hidden,), weight1 (1 + F, hidden), bias1 (1 + F,);
    hidden <= 128, F <= 64.
    """

    weight0: torch.Tensor
    bias0: torch.Tensor
    weight1: torch.Tensor
    bias1: torch.Tensor

    def __post_init__(self):
        for name in ("weight0", "bias0", "weight1", "bias1"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise ValueError(f"TriplaneDecoder.{name} must be a tensor, got "
                                 f"{type(getattr(self, name)).__name__}")
        H, C = _shape(self.weight0, "weight0", 2)
        O, H1 = _shape(self.weight1, "weight1", 2)
        if H1 != H:
            raise ValueError(f"TriplaneDecoder.weight1 must have shape (1 + F, hidden = {H}), got "
                             f"{tuple(self.weight1.shape)}")
        if tuple(self.bias0.shape) != (H,) or tuple(self.bias1.shape) != (O,):
            raise ValueError(f"TriplaneDecoder biases must have shapes ({H},) and ({O},), got "
                             f"{tuple(self.bias0.shape)} and {tuple(self.bias1.shape)}")
        if not (1 <= H <= MAX_HIDDEN and 2 <= O <= MAX_OUTPUT + 1 and C >= 1):
            raise ValueError(f"TriplaneDecoder sizes must be hidden in [1, {MAX_HIDDEN}] and F in "
                             f"[1, {MAX_OUTPUT}], got hidden {H}, F {O - 1}")
        ref = self.weight0
        for name in ("bias0", "weight1", "bias1"):
            t = getattr(self, name)
            if t.dtype != ref.dtype or t.device != ref.device:
                raise ValueError(f"TriplaneDecoder.{name} must have weight0's dtype and device "
                                 f"({ref.dtype}, {ref.device}), got ({t.dtype}, {t.device})")

    @property
    def n_features(self) -> int:
        return self.weight0.shape[1]

    @property
    def hidden_dim(self) -> int:
        return self.weight0.shape[0]

    @property
    def output_dim(self) -> int:
        return self.weight1.shape[0] - 1

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.weight0, self.bias0, self.weight1, self.bias1

    @classmethod
    def from_module(cls, decoder) -> "TriplaneDecoder":
        """The effective tensors of an OSG-like decoder module (ours or EG3D's), or ``decoder``
        itself if it already is a ``TriplaneDecoder``. ValueError for anything else (the
        renderer then falls back to the per-op kernels)."""
        if isinstance(decoder, cls):
            return decoder
        net = getattr(decoder, "net", None)
        layers = list(net) if isinstance(net, torch.nn.Sequential) else []
        if len(layers) != 3 or not isinstance(layers[1], torch.nn.Softplus) \
                or layers[1].beta != 1 or layers[1].threshold != 20:
            raise ValueError(f"decoder must be an OSG decoder (net = FC, Softplus, FC), got "
                             f"{type(decoder).__name__}")
        fc0, _, fc1 = layers
        return cls(*_effective(fc0, "net.0"), *_effective(fc1, "net.2"))


def _shape(t: torch.Tensor, name: str, dim: int) -> tuple[int, ...]:
    if t.dim() != dim:
        raise ValueError(f"TriplaneDecoder.{name} must be {dim}-d, got shape {tuple(t.shape)}")
    return tuple(t.shape)


def _effective(fc, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight * weight_gain, bias * bias_gain) of an EG3D FullyConnectedLayer."""
    weight, bias = getattr(fc, "weight", None), getattr(fc, "bias", None)
    if not isinstance(weight, torch.Tensor) or not isinstance(bias, torch.Tensor) \
            or getattr(fc, "activation", "linear") != "linear":
        raise ValueError(f"decoder.{name} must be a linear FullyConnectedLayer with a bias")
    return (weight * getattr(fc, "weight_gain", 1.0), bias * getattr(fc, "bias_gain", 1.0))


def _check_render_inputs(planes, decoder: TriplaneDecoder, ray_origins, ray_directions, depths):
    from .. import _checks

    _checks.check_tensor(planes, "planes", "(N, 3, C, H, W)", dim=5, sizes={1: 3})
    if decoder.n_features != planes.shape[2]:
        raise ValueError(f"decoder takes {decoder.n_features} features but planes have "
                         f"C = {planes.shape[2]} channels")
    _checks.check_tensor(ray_origins, "ray_origins", "(N, R, 3)", dim=3, sizes={2: 3})
    Nr, R, _ = ray_origins.shape
    _checks.check_tensor(ray_directions, "ray_directions", f"(N, R, 3) = ({Nr}, {R}, 3)", dim=3,
                         sizes={0: Nr, 1: R, 2: 3})
    _checks.check_tensor(depths, "depths", f"(N, R = {R}, S, 1)", dim=4, sizes={1: R, 3: 1})
    if depths.shape[2] < 1:
        raise ValueError(f"depths must have S >= 1 samples per ray, got {tuple(depths.shape)}")
    for t, name in ((ray_origins, "ray_origins"), (ray_directions, "ray_directions"),
                    (depths, "depths"), (decoder.weight0, "decoder.weight0")):
        _checks.check_same(planes, "planes", t, name)
        if t.dtype != planes.dtype:
            raise ValueError(f"{name} must have planes' dtype {planes.dtype}, got {t.dtype}")
    N = _checks.broadcast_batch(planes.shape[0], "planes", Nr, "ray_origins")
    _checks.broadcast_batch(N, "planes / ray_origins", depths.shape[0], "depths")


def render_triplane(planes: torch.Tensor, decoder, ray_origins: torch.Tensor,
                    ray_directions: torch.Tensor, depths: torch.Tensor, *, box_warp: float = 1.0,
                    white_back: bool = False, t_min: float = 0.0, alpha_min: float = 0.0,
                    depth_range=None, known_densities=None, return_densities: bool = False):
    """The fused tri-plane renderer: per ray, the tri-plane gather at o + t d, EG3D's OSG
    decoder and the mip march in one op; the backward recomputes each ray (no (rays x samples x
    C) tensor is kept).

    Args:
        planes: (Np, 3, C, H, W) tri-planes.
        decoder: a ``TriplaneDecoder`` or an OSG decoder module (ours or EG3D's).
        ray_origins, ray_directions: (Nr, R, 3).
        depths: (Nd, R, S, 1) sample depths, sorted per ray (no gradient).
        box_warp: side of the box the planes span.
        white_back, t_min, alpha_min, depth_range: as ``composite``. A ray whose transmittance
            falls below ``t_min`` decodes no further samples (forward and backward).
        known_densities: optional (N or 1, R, S, 1) raw densities already known at some samples
            (NaN elsewhere), e.g. a coarse pass's (``return_densities``) merged into the final
            samples. They must be what the decoder gives there (the result is the same either
            way): the CPU kernel then decodes such a sample only if its colour gets a weight.
        return_densities: also return the raw density of every sample (N, R, S, 1), NaN where
            the march stopped before it (no gradient).

    Np, Nr, Nd equal or 1; N the largest. Returns rgb (N, R, F) in EG3D's [-1, 1] convention,
    depth (N, R, 1), weights (N, R, S-1, 1) (no gradient) and weights_sum (N, R, 1) (and the
    densities). Gradients flow to planes and the decoder's tensors; ray origins, directions and
    depths get none (an error if they require it). float32 or float64, CPU or CUDA kernels;
    other dtypes and devices run the reference chain (``_reference.render_triplane``).
    """
    from .. import _checks
    from .._ext import kernel_for
    from . import _reference
    from .composite import _depth_range_tensor

    decoder = TriplaneDecoder.from_module(decoder)
    _check_render_inputs(planes, decoder, ray_origins, ray_directions, depths)
    for value, name in ((t_min, "t_min"), (alpha_min, "alpha_min")):
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    if any(t.requires_grad for t in (ray_origins, ray_directions, depths)):
        raise ValueError("render_triplane has no gradient for ray_origins, ray_directions or "
                         "depths; detach them (or render with ops='kernels')")
    N, (_, R, S, _) = max(planes.shape[0], ray_origins.shape[0], depths.shape[0]), depths.shape
    if known_densities is not None:
        _checks.check_tensor(known_densities, "known_densities", f"(N = {N} or 1, R = {R}, "
                             f"S = {S}, 1)", dim=4, sizes={1: R, 2: S, 3: 1})
        _checks.check_same(planes, "planes", known_densities, "known_densities")
        if known_densities.shape[0] not in (1, N) or known_densities.dtype != planes.dtype:
            raise ValueError(f"known_densities must have shape (N = {N} or 1, {R}, {S}, 1) and "
                             f"planes' dtype {planes.dtype}, got {tuple(known_densities.shape)} "
                             f"{known_densities.dtype}")
        known_densities = known_densities.detach()
    range_t = _depth_range_tensor(depth_range, depths)
    ext = kernel_for(planes.device, "render_triplane")
    if ext is None or planes.dtype not in (torch.float32, torch.float64):
        out = _reference.render_triplane(planes, decoder, ray_origins, ray_directions, depths,
                                         box_warp=box_warp, white_back=white_back, t_min=t_min,
                                         alpha_min=alpha_min, return_densities=return_densities,
                                         depth_range=(range_t[0], range_t[1]))
        return out
    rgb, depth, weights, weights_sum, stats = ext.render_triplane(
        planes, *decoder.tensors(), ray_origins, ray_directions, depths, range_t,
        float(box_warp), bool(white_back), float(t_min), float(alpha_min), known_densities)
    if return_densities:
        return rgb, depth, weights, weights_sum, stats[..., 2:].unsqueeze(-1)
    return rgb, depth, weights, weights_sum


def decode_triplane(planes: torch.Tensor, decoder, coords: torch.Tensor, box_warp: float = 1.0):
    """EG3D's OSG decoder at points, the tri-plane gather fused in: no gathered features are
    kept, the backward recomputes each point.

    Args:
        planes: (Np, 3, C, H, W) tri-planes.
        decoder: a ``TriplaneDecoder`` or an OSG decoder module (ours or EG3D's).
        coords: (Nc, M, 3) points (no gradient); outside the box the planes read zeros.
        box_warp: side of the box the planes span.

    Np, Nc equal or 1; N the larger. Returns features (N, M, F) = sigmoid(out[1:]) * (1 + 2e-3)
    - 1e-3 and the raw density (N, M, 1) = out[0], as EG3D's ``run_model``. Gradients flow to
    planes and the decoder's tensors (an error if coords require grad). float32 or float64, CPU
    or CUDA kernels; other dtypes and devices run the reference (``_reference.decode_triplane``).
    """
    from .. import _checks
    from .._ext import kernel_for
    from . import _reference

    decoder = TriplaneDecoder.from_module(decoder)
    _checks.check_tensor(planes, "planes", "(N, 3, C, H, W)", dim=5, sizes={1: 3})
    if decoder.n_features != planes.shape[2]:
        raise ValueError(f"decoder takes {decoder.n_features} features but planes have "
                         f"C = {planes.shape[2]} channels")
    _checks.check_tensor(coords, "coords", "(N, M, 3)", dim=3, sizes={2: 3})
    for t, name in ((coords, "coords"), (decoder.weight0, "decoder.weight0")):
        _checks.check_same(planes, "planes", t, name)
        if t.dtype != planes.dtype:
            raise ValueError(f"{name} must have planes' dtype {planes.dtype}, got {t.dtype}")
    _checks.broadcast_batch(planes.shape[0], "planes", coords.shape[0], "coords")
    if coords.requires_grad:
        raise ValueError("decode_triplane has no gradient for coords; detach them (or use "
                         "triplane_sample and the decoder module)")
    ext = kernel_for(planes.device, "decode_triplane")
    if ext is None or planes.dtype not in (torch.float32, torch.float64):
        return _reference.decode_triplane(planes, decoder, coords, box_warp)
    return ext.decode_triplane(planes, *decoder.tensors(), coords, float(box_warp))
