"""Fused ops; each has a pure-PyTorch twin of the same signature in ``_reference``."""

from .triplane import triplane_sample

__all__ = ["triplane_sample"]
