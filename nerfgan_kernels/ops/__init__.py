"""Fused ops; each has a pure-PyTorch twin of the same signature in ``_reference``."""

from .composite import composite
from .fused import TriplaneDecoder, decode_triplane, render_triplane
from .importance import merge_samples, sample_pdf
from .triplane import triplane_sample

__all__ = ["composite", "decode_triplane", "merge_samples", "render_triplane", "sample_pdf",
           "triplane_sample", "TriplaneDecoder"]
