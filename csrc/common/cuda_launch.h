// What every CUDA source of the project includes instead of the CUDA runtime headers: the kernel
// launch, the device guard, the current stream, the atomics and the shared-memory declarations.
//
// The same .cu sources build two ways:
//   - by nvcc (the extension, CMake): the real CUDA runtime;
//   - as host C++ with NGK_EMULATE_CUDA (tests/emulated/build.py): the kernels run on the CPU
//     through the emulated launch of tests/emulated/emulated_cuda.h, with CPU tensors standing in
//     for CUDA ones, so that every kernel is tested on machines without a GPU.
//
// Kernels are launched with
//   launch<kernel<scalar_t>>(grid, block, dynamic_shared_bytes, stream, args...);
// and declare shared memory with
//   NGK_SHARED(float, tile, 256);          // __shared__ float tile[256];
//   NGK_DYNAMIC_SHARED(float, buffer);     // extern __shared__ float buffer[];
#pragma once

#include <cstddef>
#include <utility>

#if defined(NGK_EMULATE_CUDA)

#include <ATen/core/Tensor.h>

#include "emulated_cuda.h"

namespace nerfgan_kernels {

struct DeviceGuard {
  explicit DeviceGuard(const c10::Device&) {}
};

inline cudaStream_t current_stream() { return nullptr; }

template <auto Kernel, typename... Args>
void launch(dim3 grid, dim3 block, size_t dynamic_shared, cudaStream_t, Args&&... args) {
  ngk_emu::run(ngk_emu::launch_name<Kernel>(), grid, block, dynamic_shared,
               [&] { Kernel(args...); });
}

}  // namespace nerfgan_kernels

// One array per declaration (its static tag), `name` an array reference as in CUDA.
#define NGK_SHARED(type, name, count)              \
  static constexpr char ngk_shared_tag_##name = 0; \
  type(&name)[count] = ::ngk_emu::shared_array<type, (count)>(&ngk_shared_tag_##name)
#define NGK_DYNAMIC_SHARED(type, name) type* name = ::ngk_emu::dynamic_shared<type>()

#else  // nvcc

#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace nerfgan_kernels {

using DeviceGuard = c10::cuda::CUDAGuard;

inline cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream(); }

template <auto Kernel, typename... Args>
void launch(dim3 grid, dim3 block, size_t dynamic_shared, cudaStream_t stream, Args&&... args) {
  Kernel<<<grid, block, dynamic_shared, stream>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace nerfgan_kernels

#define NGK_SHARED(type, name, count) __shared__ type name[count]
#define NGK_DYNAMIC_SHARED(type, name)                             \
  extern __shared__ __align__(16) unsigned char ngk_dynamic_shared_bytes_[]; \
  type* name = reinterpret_cast<type*>(ngk_dynamic_shared_bytes_)

#endif
