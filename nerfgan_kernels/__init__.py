"""nerfgan_kernels: fused tri-plane NeRF-GAN kernels (CPU and CUDA) with PyTorch references."""

from ._ext import cuda_available, extension_available
from .ops import composite, merge_samples, sample_pdf, triplane_sample

__version__ = "0.1.0"

__all__ = ["composite", "merge_samples", "sample_pdf", "triplane_sample", "cuda_available",
           "extension_available", "__version__"]
