"""Fused ops; each has a pure-PyTorch twin of the same signature in ``_reference``."""

from .composite import composite
from .importance import merge_samples, sample_pdf
from .triplane import triplane_sample

__all__ = ["composite", "merge_samples", "sample_pdf", "triplane_sample"]
