"""nerfgan_kernels: fused tri-plane NeRF-GAN kernels (CPU and CUDA) with PyTorch references."""

from ._ext import cuda_available, extension_available
from .ops import composite, triplane_sample

__version__ = "0.1.0"

__all__ = ["composite", "triplane_sample", "cuda_available", "extension_available", "__version__"]
