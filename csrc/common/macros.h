// Host/device qualifiers so that one header of math serves the CPU and CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define NGK_HOST_DEVICE __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// Always inlined, so that each CPU kernel compiles the math with its own instruction set
// (cpu/simd.h).
#define NGK_HOST_DEVICE inline __attribute__((always_inline))
#else
#define NGK_HOST_DEVICE inline
#endif

// A loop the CPU compiler should vectorise (OpenMP's simd: no aliasing between iterations);
// nothing for nvcc.
#if defined(__CUDACC__)
#define NGK_SIMD
#else
#define NGK_SIMD _Pragma("omp simd")
#endif

// The torch.library namespace of the ops: torch.ops.nerfgan_kernels.<op>. The emulated build
// of tests/emulated registers the same ops under its own namespace, so that both can be loaded
// in one process.
#ifndef NGK_LIBRARY
#define NGK_LIBRARY nerfgan_kernels
#endif
