// EG3D's OSG decoder inside CUDA kernels, shared by render_triplane_cuda.cu (per ray sample) and
// decode_triplane_cuda.cu (per point): the staging of the decoder's weights in shared memory,
// the decode of one point (gather + MLP) and its backward (decoder gradients with atomics into
// per-block accumulators, feature gradients scattered into the planes' gradient).
//
// The functions take the kernel's argument struct A as a template parameter: it must have the
// plane sizes C, H, W, the decoder sizes Hd, O = 1 + F, scale = 2 / box_warp and the decoder's
// tensors w0t (C, Hd), b0 (Hd), w1t (Hd, O), b1 (O), w0 (Hd, C), w1 (O, Hd).
//
// Features are gathered kChunk channels at a time and multiplied into the first layer at once,
// so C is not bounded; Hd and O are (kMaxHidden, kMaxOutput + 1: per-thread arrays).
#pragma once

#include <algorithm>

#include "../common/cuda_launch.h"
#include "../common/macros.h"
#include "decoder_math.h"
#include "render_triplane.h"
#include "render_triplane_math.h"

namespace nerfgan_kernels {
namespace fused {
namespace cuda {

constexpr int kThreads = 128;
constexpr size_t kSharedBytes = 48 * 1024;  // dynamic shared memory without the opt-in
constexpr int64_t kChunk = 8;               // feature channels gathered at a time

inline int blocks_for(int64_t items) {
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535 * 8)));
}

// The decoder's tensors a kernel reads (staged in shared memory or global).
enum Array : int { kW0t, kB0, kW1t, kB1, kW0, kW1, kArrays };

template <typename T>
struct Decoder {
  const T* a[kArrays];
};

// The decoder's gradients, transposed as the kernels' weights: w0t (C, Hd), b0 (Hd),
// w1t (Hd, O), b1 (O); in shared memory (the block's sums) or the outputs.
template <typename T>
struct Grads {
  T *w0t, *b0, *w1t, *b1;
};

// Where each array lives in the dynamic shared memory of a block, in elements of the dtype;
// -1: in global memory.
struct SharedPlan {
  int64_t offset[kArrays];
  int64_t grads;     // the decoder-gradient accumulators (backward), C*Hd + Hd + Hd*O + O
  int64_t elements;  // dynamic shared memory in elements
};

NGK_HOST_DEVICE void grad_sizes(int64_t C, int64_t Hd, int64_t O, int64_t* sizes) {
  sizes[0] = C * Hd;
  sizes[1] = Hd;
  sizes[2] = Hd * O;
  sizes[3] = O;
}

// First come, first placed: the gradient accumulators (backward), then the arrays in the order
// given, each where it still fits in kSharedBytes.
inline SharedPlan plan_shared(int64_t C, int64_t Hd, int64_t O, size_t element_bytes,
                              bool backward) {
  const int64_t budget = static_cast<int64_t>(kSharedBytes / element_bytes);
  int64_t size[kArrays];
  size[kW0t] = size[kW0] = C * Hd;
  size[kW1t] = size[kW1] = Hd * O;
  size[kB0] = Hd;
  size[kB1] = O;
  SharedPlan plan;
  plan.elements = 0;
  plan.grads = -1;
  auto place = [&](int64_t n) {
    if (plan.elements + n > budget) return int64_t{-1};
    const int64_t at = plan.elements;
    plan.elements += n;
    return at;
  };
  if (backward) plan.grads = place(C * Hd + Hd + Hd * O + O);
  for (int a = 0; a < kArrays; ++a) plan.offset[a] = -1;
  const Array order[] = {kB0, kB1, kW0t, kW1t, kW0, kW1};
  for (const Array a : order) {
    if (backward || (a != kW0 && a != kW1)) plan.offset[a] = place(size[a]);
  }
  return plan;
}

inline void check_limits(int64_t Hd, int64_t O, const char* op) {
  TORCH_CHECK(Hd <= kMaxHidden && O <= kMaxOutput + 1, op, "'s CUDA kernels take at most ",
              kMaxHidden, " hidden units and ", kMaxOutput, " features, got weight1 of shape (",
              O, ", ", Hd, ")");
}

// Copies the planned arrays into shared memory (all threads of the block; the caller
// synchronises) and returns where the kernel reads each one.
template <typename T, typename A>
__device__ Decoder<T> stage_decoder(const A& a, const SharedPlan& plan, T* smem) {
  const T* src[kArrays];
  src[kW0t] = a.w0t;
  src[kB0] = a.b0;
  src[kW1t] = a.w1t;
  src[kB1] = a.b1;
  src[kW0] = a.w0;
  src[kW1] = a.w1;
  int64_t size[kArrays];
  size[kW0t] = size[kW0] = a.C * a.Hd;
  size[kW1t] = size[kW1] = a.Hd * a.O;
  size[kB0] = a.Hd;
  size[kB1] = a.O;
  Decoder<T> dec;
  for (int k = 0; k < kArrays; ++k) {
    if (plan.offset[k] < 0) {
      dec.a[k] = src[k];
      continue;
    }
    T* dst = smem + plan.offset[k];
    for (int64_t e = threadIdx.x; e < size[k]; e += blockDim.x) dst[e] = src[k][e];
    dec.a[k] = dst;
  }
  return dec;
}

// The block's decoder-gradient accumulators: zeroed in shared memory when the plan has them,
// else the outputs themselves (the threads then add into them directly). The caller
// synchronises before use.
template <typename T>
__device__ Grads<T> block_grads(const SharedPlan& plan, T* smem, const Grads<T>& out,
                                const int64_t* sizes) {
  if (plan.grads < 0) return out;
  T* acc = smem + plan.grads;
  for (int64_t e = threadIdx.x; e < sizes[0] + sizes[1] + sizes[2] + sizes[3]; e += blockDim.x) {
    acc[e] = T(0);
  }
  return Grads<T>{acc, acc + sizes[0], acc + sizes[0] + sizes[1],
                  acc + sizes[0] + sizes[1] + sizes[2]};
}

// The block's sums into the outputs, one atomic per element (all threads; after the last use of
// the accumulators). Nothing when the threads added into the outputs themselves.
template <typename T>
__device__ void flush_block_grads(const SharedPlan& plan, const Grads<T>& g, const Grads<T>& out,
                                  const int64_t* sizes) {
  if (plan.grads < 0) return;
  __syncthreads();
  T* const from[4] = {g.w0t, g.b0, g.w1t, g.b1};
  T* const to[4] = {out.w0t, out.b0, out.w1t, out.b1};
  for (int part = 0; part < 4; ++part) {
    for (int64_t e = threadIdx.x; e < sizes[part]; e += blockDim.x) {
      gpuAtomicAdd(to[part] + e, from[part][e]);
    }
  }
}

// One decoded point: pre-activations of the hidden layer and the decoder's outputs
// (out[0] = raw density, out[1 + i] = raw colour i).
template <typename T>
struct Sample {
  T pre[kMaxHidden];
  T out[kMaxOutput + 1];
};

// Decodes the point x (3) on the plane set planes (3, H, W, C) into s; h (Hd) is scratch.
template <typename T, typename A>
__device__ void decode(const A& a, const Decoder<T>& dec, const T* planes, const T* x,
                       Sample<T>& s, T* h) {
  const int64_t C = a.C, Hd = a.Hd;
  const PlaneTaps<T> taps = make_plane_taps(x, a.scale, a.H, a.W);
  for (int64_t k = 0; k < Hd; ++k) s.pre[k] = dec.a[kB0][k];
  T f[kChunk];
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t n = C - c0 < kChunk ? C - c0 : kChunk;
    gather_channels(taps, planes, a.H, a.W, C, c0, n, f);
    decoder::accumulate(f, 1, dec.a[kW0t] + c0 * Hd, Hd, n, Hd, s.pre);  // pre += f W0t[c0:]
  }
  for (int64_t k = 0; k < Hd; ++k) h[k] = hidden_softplus(s.pre[k]);
  decoder::linear(h, dec.a[kW1t], dec.a[kB1], Hd, a.O, s.out);
}

// One row of an outer product: acc_row (n_out) += x * gy (n_out) with atomics, from column
// `start` on, wrapping around (threads pass different starts, so that the lanes of a warp
// seldom hit one address at once).
template <typename T>
__device__ void atomic_row_add(T* acc_row, T x, const T* gy, int64_t n_out, int64_t start) {
  for (int64_t o = start; o < n_out; ++o) gpuAtomicAdd(acc_row + o, x * gy[o]);
  for (int64_t o = 0; o < start; ++o) gpuAtomicAdd(acc_row + o, x * gy[o]);
}

// acc (n) += g (n) with atomics, the same way.
template <typename T>
__device__ void atomic_vector_add(T* acc, const T* g, int64_t n, int64_t start) {
  for (int64_t o = start; o < n; ++o) gpuAtomicAdd(acc + o, g[o]);
  for (int64_t o = 0; o < start; ++o) gpuAtomicAdd(acc + o, g[o]);
}

// Backward of the decoded point x (3) (decoded in s) whose outputs receive dout (O): decoder
// gradients into g, feature gradients scattered into its plane set's gradient grad_planes
// (3, H, W, C) at the 4 taps of each plane, weight = bilinear weight / 3.
template <typename T, typename A>
__device__ void sample_backward(const A& a, const Decoder<T>& dec, const T* planes, const T* x,
                                const Sample<T>& s, const T* dout, const Grads<T>& g,
                                T* grad_planes) {
  const int64_t C = a.C, Hd = a.Hd, O = a.O;
  T dpre[kMaxHidden];
  decoder::linear_backward_input(dec.a[kW1], dout, Hd, O, dpre);  // dL/dh
  for (int64_t k = 0; k < Hd; ++k) dpre[k] *= hidden_softplus_grad(s.pre[k]);
  // Second layer: g_w1t (Hd, O) += h outer dout, g_b1 += dout.
  const int64_t lane = threadIdx.x;
  atomic_vector_add(g.b1, dout, O, lane % O);
  for (int64_t k = 0; k < Hd; ++k) {
    atomic_row_add(g.w1t + k * O, hidden_softplus(s.pre[k]), dout, O, lane % O);
  }
  atomic_vector_add(g.b0, dpre, Hd, lane % Hd);
  // First layer and the planes, kChunk channels at a time: g_w0t (C, Hd) += f outer dpre,
  // df = W0^T dpre scattered to the taps.
  const PlaneTaps<T> taps = make_plane_taps(x, a.scale, a.H, a.W);
  const int64_t plane_size = a.H * a.W * C;
  T f[kChunk], df[kChunk];
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t n = C - c0 < kChunk ? C - c0 : kChunk;
    gather_channels(taps, planes, a.H, a.W, C, c0, n, f);
    for (int64_t e = 0; e < n; ++e) df[e] = T(0);
    decoder::accumulate(dpre, 1, dec.a[kW0] + c0, C, Hd, n, df);  // df = W0[:, c0:]^T dpre
    for (int64_t e = 0; e < n; ++e) {
      atomic_row_add(g.w0t + (c0 + e) * Hd, f[e], dpre, Hd, lane % Hd);
    }
    for (int k = 0; k < 3; ++k) {
      const triplane::Stencil<T>& st = taps.st[k];
      T* base = grad_planes + k * plane_size + c0;
      for (int tap = 0; tap < 4; ++tap) {
        if (!st.valid[tap]) continue;
        const T wt = st.weight[tap] / T(3);
        T* row = base + st.offset[tap] * C;
        for (int64_t e = 0; e < n; ++e) gpuAtomicAdd(row + e, wt * df[e]);
      }
    }
  }
}

}  // namespace cuda
}  // namespace fused
}  // namespace nerfgan_kernels
