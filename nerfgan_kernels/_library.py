"""The Python half of the torch.library ops: fake (meta) kernels and autograd formulas.

The schemas and the CPU / CUDA kernels are registered in C++ (csrc/ops.cpp) under
``torch.ops.nerfgan_kernels``; here every op gets a fake kernel (output shapes, dtypes and strides
from the input metadata alone, for FakeTensor, torch.compile and torch.export) and every forward
op an autograd formula that calls its ``*_backward`` op. The backward ops are once
differentiable: differentiating them again raises.

``register(namespace)`` does it for one namespace; the package registers ``nerfgan_kernels`` when
the extension loads, the emulated build of tests/emulated its own namespace.
"""

from __future__ import annotations

import torch

from . import _checks

_registered: set[str] = set()


def _empty(like: torch.Tensor) -> torch.Tensor:
    """The (0,) tensor a backward op returns for a gradient that was not asked for."""
    return like.new_empty((0,))


# ---- fake kernels: shapes as csrc/*/*.h state them

def _triplane_fake(planes, coords, box_warp, reduce):
    Np, _, C = planes.shape[:3]
    Nc, M = coords.shape[:2]
    N = Nc if Np == 1 else Np
    shape = (N, 3, M, C) if reduce == "none" else (N, M, C)
    return planes.new_empty(shape)


def _triplane_backward_fake(grad_out, planes, coords, box_warp, reduce, need_planes,
                            need_coords):
    Np, _, C, H, W = planes.shape
    # The kernels scatter into channels-last planes: (Np, 3, H, W, C) viewed as (Np, 3, C, H, W).
    grad_planes = (planes.new_empty((Np, 3, H, W, C)).permute(0, 1, 4, 2, 3) if need_planes
                   else _empty(planes))
    grad_coords = coords.new_empty(coords.shape) if need_coords else _empty(coords)
    return grad_planes, grad_coords


def _composite_fake(colors, densities, depths, depth_range, white_back, t_min, alpha_min):
    N, R, S, C = colors.shape
    geometry = _checks.geometry_dtype(colors.dtype)  # depth, weights and stats
    return (colors.new_empty((N, R, C)), colors.new_empty((N, R, 1), dtype=geometry),
            colors.new_empty((N, R, S - 1, 1), dtype=geometry),
            colors.new_empty((N, R, 3), dtype=geometry))


def _composite_backward_fake(grad_rgb, grad_depth, grad_weights, colors, densities, depths,
                             depth_range, stats, white_back, t_min, alpha_min):
    return colors.new_empty(colors.shape), densities.new_empty(densities.shape)


def _sample_pdf_fake(depths_coarse, weights_coarse, u):
    N, R = depths_coarse.shape[:2]
    return depths_coarse.new_empty((N, R, u.shape[-1], 1))


def _merge_index_fake(depths_a, depths_b):
    N, R, Sa, _ = depths_a.shape
    S = Sa + depths_b.shape[2]
    return depths_a.new_empty((N, R, S, 1)), depths_a.new_empty((N, R, S), dtype=torch.int64)


def _merge_gather_fake(index, values_a, values_b):
    N, R, Sa, C = values_a.shape
    return values_a.new_empty((N, R, Sa + values_b.shape[2], C))


def _merge_gather_backward_fake(grad_out, index, Sa, Sb, need_a, need_b):
    N, R, _, C = grad_out.shape
    return (grad_out.new_empty((N, R, Sa, C)) if need_a else _empty(grad_out),
            grad_out.new_empty((N, R, Sb, C)) if need_b else _empty(grad_out))


def _render_triplane_fake(planes, weight0, bias0, weight1, bias1, ray_origins, ray_directions,
                          depths, depth_range, box_warp, white_back, t_min, alpha_min,
                          known_densities=None):
    N = max(planes.shape[0], ray_origins.shape[0], depths.shape[0])
    R, S, F = depths.shape[1], depths.shape[2], weight1.shape[0] - 1
    return (planes.new_empty((N, R, F)), planes.new_empty((N, R, 1)),
            planes.new_empty((N, R, max(S - 1, 0), 1)), planes.new_empty((N, R, 1)),
            planes.new_empty((N, R, 2 + S)))


def _render_triplane_backward_fake(grad_rgb, grad_depth, grad_weights, grad_weights_sum, planes,
                                   weight0, bias0, weight1, bias1, *rest):
    Np, _, C, H, W = planes.shape  # the planes' gradient in the kernels' channels-last memory
    grad_planes = planes.new_empty((Np, 3, H, W, C)).permute(0, 1, 4, 2, 3)
    return (grad_planes, *(t.new_empty(t.shape) for t in (weight0, bias0, weight1, bias1)))


def _decode_triplane_fake(planes, weight0, bias0, weight1, bias1, coords, box_warp):
    N, M = max(planes.shape[0], coords.shape[0]), coords.shape[1]
    return planes.new_empty((N, M, weight1.shape[0] - 1)), planes.new_empty((N, M, 1))


def _decode_triplane_backward_fake(grad_features, grad_density, planes, weight0, bias0, weight1,
                                   bias1, coords, box_warp):
    return tuple(t.new_empty(t.shape) for t in (planes, weight0, bias0, weight1, bias1))


# ---- autograd

def _autograd(ops):
    """{op name: (setup_context, backward)} for the forward ops of one namespace."""

    def triplane_setup(ctx, inputs, output):
        planes, coords, box_warp, reduce = inputs
        ctx.save_for_backward(planes, coords)
        ctx.options = (box_warp, reduce)

    def triplane_backward(ctx, grad_out):
        planes, coords = ctx.saved_tensors
        need_planes, need_coords = ctx.needs_input_grad[:2]
        grad_planes, grad_coords = ops.triplane_sample_backward(
            grad_out.to(planes.dtype), planes, coords, *ctx.options, need_planes, need_coords)
        return (grad_planes if need_planes else None, grad_coords if need_coords else None,
                None, None)

    def composite_setup(ctx, inputs, output):
        colors, densities, depths, depth_range, white_back, t_min, alpha_min = inputs
        stats = output[3]
        ctx.mark_non_differentiable(stats)
        ctx.save_for_backward(colors, densities, depths, depth_range, stats)
        ctx.options = (white_back, t_min, alpha_min)

    def composite_backward(ctx, grad_rgb, grad_depth, grad_weights, _grad_stats):
        colors, densities, depths, depth_range, stats = ctx.saved_tensors
        grad_colors, grad_densities = ops.composite_backward(
            grad_rgb.contiguous(), grad_depth.contiguous(), grad_weights.contiguous(), colors,
            densities, depths, depth_range, stats, *ctx.options)
        return (grad_colors if ctx.needs_input_grad[0] else None,
                grad_densities if ctx.needs_input_grad[1] else None, None, None, None, None, None)

    def render_triplane_setup(ctx, inputs, output):
        stats = output[4]
        ctx.mark_non_differentiable(output[2], stats)  # weights: for importance sampling only
        ctx.save_for_backward(*inputs[:9], stats)
        ctx.options = inputs[9:13]  # known_densities (an input of the forward only) is not needed

    def render_triplane_backward(ctx, grad_rgb, grad_depth, grad_weights, grad_weights_sum,
                                 _grad_stats):
        saved = ctx.saved_tensors
        if any(ctx.needs_input_grad[5:9]) or (len(ctx.needs_input_grad) > 13
                                              and ctx.needs_input_grad[13]):
            raise RuntimeError("nerfgan_kernels: render_triplane has no gradient for ray_origins, "
                               "ray_directions, depths, depth_range or known_densities")
        grads = ops.render_triplane_backward(
            grad_rgb.contiguous(), grad_depth.contiguous(), grad_weights.contiguous(),
            grad_weights_sum.contiguous(), *saved[:9], saved[9], *ctx.options)
        return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad[:5])),
                None, None, None, None, None, None, None, None, None)

    def decode_triplane_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:6])
        ctx.box_warp = inputs[6]

    def decode_triplane_backward(ctx, grad_features, grad_density):
        saved = ctx.saved_tensors
        if ctx.needs_input_grad[5]:
            raise RuntimeError("nerfgan_kernels: decode_triplane has no gradient for coords")
        grads = ops.decode_triplane_backward(grad_features.contiguous(), grad_density.contiguous(),
                                             *saved, ctx.box_warp)
        return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad[:5])),
                None, None)

    def merge_gather_setup(ctx, inputs, output):
        index, values_a, values_b = inputs
        ctx.save_for_backward(index)
        ctx.sizes = (values_a.shape[2], values_b.shape[2])

    def merge_gather_backward(ctx, grad_out):
        (index,) = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[1:3]
        grad_a, grad_b = ops.merge_gather_backward(grad_out, index, *ctx.sizes, need_a, need_b)
        return None, grad_a if need_a else None, grad_b if need_b else None

    def non_differentiable(ctx, inputs, output):
        # EG3D computes the importance depths without gradient: so do these ops.
        ctx.mark_non_differentiable(*(output if isinstance(output, tuple) else (output,)))

    def unreachable(ctx, *grads):
        raise RuntimeError("nerfgan_kernels: this op's outputs are not differentiable")

    return {
        "triplane_sample": (triplane_setup, triplane_backward),
        "composite": (composite_setup, composite_backward),
        "merge_gather": (merge_gather_setup, merge_gather_backward),
        "render_triplane": (render_triplane_setup, render_triplane_backward),
        "decode_triplane": (decode_triplane_setup, decode_triplane_backward),
        "sample_pdf": (non_differentiable, unreachable),
        "merge_samples_index": (non_differentiable, unreachable),
    }


def _no_double_backward(name: str):
    def setup(ctx, inputs, output):
        pass

    def backward(ctx, *grads):
        raise RuntimeError(f"nerfgan_kernels: {name} is once differentiable; the double backward "
                           "(differentiating a gradient of it) is not implemented")

    return setup, backward


FAKES = {
    "triplane_sample": _triplane_fake,
    "triplane_sample_backward": _triplane_backward_fake,
    "composite": _composite_fake,
    "composite_backward": _composite_backward_fake,
    "sample_pdf": _sample_pdf_fake,
    "merge_samples_index": _merge_index_fake,
    "merge_gather": _merge_gather_fake,
    "merge_gather_backward": _merge_gather_backward_fake,
    "render_triplane": _render_triplane_fake,
    "render_triplane_backward": _render_triplane_backward_fake,
    "decode_triplane": _decode_triplane_fake,
    "decode_triplane_backward": _decode_triplane_backward_fake,
}
BACKWARD_OF = {"triplane_sample_backward": "triplane_sample", "composite_backward": "composite",
               "merge_gather_backward": "merge_gather",
               "render_triplane_backward": "render_triplane",
               "decode_triplane_backward": "decode_triplane"}


def register(namespace: str = "nerfgan_kernels"):
    """Registers the fake kernels and autograd of ``torch.ops.<namespace>`` (once); returns the
    namespace object."""
    ops = getattr(torch.ops, namespace)
    if namespace in _registered:
        return ops
    for name, fake in FAKES.items():
        torch.library.register_fake(f"{namespace}::{name}", fake)
    for name, (setup, backward) in _autograd(ops).items():
        torch.library.register_autograd(f"{namespace}::{name}", backward, setup_context=setup)
    for name, forward in BACKWARD_OF.items():
        setup, backward = _no_double_backward(forward)
        torch.library.register_autograd(f"{namespace}::{name}", backward, setup_context=setup)
    _registered.add(namespace)
    return ops
