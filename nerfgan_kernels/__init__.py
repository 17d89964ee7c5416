"""nerfgan_kernels: fused tri-plane NeRF-GAN kernels (CPU and CUDA) with PyTorch references."""

from ._ext import cuda_available, extension_available
from .ops import (TriplaneDecoder, composite, decode_triplane, merge_samples, render_triplane,
                  sample_pdf, triplane_sample)

__version__ = "0.1.0"

__all__ = ["composite", "decode_triplane", "merge_samples", "render_triplane", "sample_pdf",
           "triplane_sample", "TriplaneDecoder", "cuda_available", "extension_available",
           "__version__"]
