// Host/device qualifiers so that one header of math serves the CPU and CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define NGK_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define NGK_HOST_DEVICE inline
#endif
