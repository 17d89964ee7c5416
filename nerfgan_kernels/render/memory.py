"""The one memory model of the renderer and the point queries: peak bytes per ray or per point,
and the chunking that keeps one chunk's intermediates under a budget."""

from __future__ import annotations

#: Default budget for the per-chunk intermediates of one render.
DEFAULT_MAX_MEMORY_BYTES = 2 * 2**30


def decoder_sizes(decoder) -> tuple[int, int, int]:
    """(features C, hidden H, outputs O) of a decoder (EG3D's OSG sizes 32, 64, 32 for a decoder
    that does not declare them)."""
    return (getattr(decoder, "n_features", 32), getattr(decoder, "hidden_dim", 64),
            getattr(decoder, "output_dim", 32))


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


def point_bytes(n_features: int, hidden_dim: int, output_dim: int, itemsize: int) -> int:
    """Upper estimate of the bytes one point of a point query (``sample_mixed``,
    ``render_density``) needs: coordinates, gathered features (per plane and averaged), the
    decoder's activations and outputs."""
    return itemsize * (6 + 4 * n_features + 2 * hidden_dim + 3 * output_dim + 1)


#: Bytes per sample and latent of a neighbourhood query (``inversion.neighborhood_batch``): its
#: features, density and compositing intermediates in float32, G's and G0's.
NEIGHBOURHOOD_SAMPLE_BYTES = 64 * 4 * 2
