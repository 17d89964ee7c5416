"""EG3D-compatible generator on this package's kernels, and safe checkpoint loading."""

from .checkpoint import CheckpointError, build_generator, load_generator, save_generator
from .eg3d_pickle import UnsafePickleError, read_eg3d_pickle
from .triplane import TriPlaneGenerator

__all__ = ["CheckpointError", "TriPlaneGenerator", "build_generator", "load_generator", "save_generator",
           "read_eg3d_pickle", "UnsafePickleError"]
