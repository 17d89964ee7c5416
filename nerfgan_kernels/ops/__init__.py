"""Fused ops; each has a pure-PyTorch twin of the same signature in ``_reference``."""

from .composite import composite
from .triplane import triplane_sample

__all__ = ["composite", "triplane_sample"]
