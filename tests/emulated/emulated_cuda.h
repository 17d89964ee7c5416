// A host emulation of the CUDA execution model, so that the project's CUDA kernels run (and are
// tested) on a machine without a GPU. Test infrastructure only: csrc/common/cuda_launch.h includes
// it when NGK_EMULATE_CUDA is defined (the build in tests/emulated/build.py), never otherwise.
//
// What is emulated:
//   - a launch over grid x block: blocks run one at a time, in a shuffled order (seeded);
//   - each thread of a block is a fiber (ucontext) on the launching host thread, so the threads of
//     a block run concurrently in the CUDA sense: a thread runs until it reaches __syncthreads(),
//     a warp collective, or its end, then the next one runs;
//   - __syncthreads() is a real barrier; after each barrier the threads run in a new order
//     (Order::kForward / kReverse / kShuffle; the default shuffles), so a missing barrier or a race
//     on shared memory gives wrong results deterministically, whatever the order;
//   - shared memory per block (NGK_SHARED: one array per declaration, whatever the thread, loop
//     pass or branch that reaches it; NGK_DYNAMIC_SHARED: 16-byte aligned), filled with 0xFF bytes
//     (NaN for floats) at the start of every block so that a read before any write shows, and
//     poisoned for AddressSanitizer outside what the kernel declared; 48 KiB per block in all;
//   - threadIdx / blockIdx / blockDim / gridDim, the atomics (gpuAtomicAdd, atomicAdd, atomicMax,
//     atomicMin, atomicExch, atomicCAS) and the warp primitives (__shfl_sync, __shfl_up_sync,
//     __shfl_down_sync, __shfl_xor_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp), with
//     partial masks; a warp is 32 consecutive linear thread ids, the last one of a block may be
//     partial. A collective completes when its last non-exited lane of the mask arrives, and the
//     lanes it releases run at once, before the threads of other warps (so a __syncwarp never
//     stands in for a __syncthreads). As in CUDA, exited (or absent) lanes named in a mask do not
//     take part; a shuffle from one returns all-ones bits (NaN, -1), as does one from a lane
//     outside the mask (undefined in CUDA).
//
// Checked at run time (a std::runtime_error names the kernel and the block):
//   - CUDA's launch limits: empty grid or block, > 1024 threads per block, grid.y/z > 65535,
//     dynamic shared memory > 48 KiB; a grid-size cap (Config::max_blocks) makes grid-stride loops
//     repeat;
//   - __syncthreads() that some threads of the block never reach (divergent barrier or early exit);
//   - a warp collective whose mask names a lane that waits in __syncthreads or in another
//     collective or mask (it can never complete); a calling lane outside its own mask;
//   - an exception thrown by the kernel body.
//
// Not emulated: races on global memory between threads that do not synchronise (fibers are not
// preempted between two memory accesses), memory ordering and __threadfence, streams (a launch
// runs to completion before it returns), textures, cooperative groups, clusters.
#pragma once

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define NGK_EMU_ASAN 1
#else
#define NGK_EMU_ASAN 0
#endif

// ---- CUDA's qualifiers and built-in types on the host.
#ifndef __global__
#define __global__
#endif
#ifndef __device__
#define __device__
#endif
#ifndef __host__
#define __host__
#endif
#ifndef __forceinline__
#define __forceinline__ inline
#endif
// __shared__ is deliberately left undefined: kernels declare shared memory with NGK_SHARED /
// NGK_DYNAMIC_SHARED (csrc/common/cuda_launch.h), which this file implements per block.

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
      : x(x_), y(y_), z(z_) {}
};
using cudaStream_t = struct ngk_emu_stream*;

namespace ngk_emu {

enum class Order : int { kForward = 0, kReverse = 1, kShuffle = 2 };

// The emulator's knobs (tests set them through the emulated module).
struct Config {
  uint64_t seed = 0;                 // block order and shuffled thread orders
  Order order = Order::kShuffle;     // thread order after each barrier (and at the start)
  int64_t max_blocks = 0;            // > 0: grid.x is capped to it (grid-stride loops repeat)
};

inline Config& config() {
  static Config c;
  return c;
}

// Qualified names of the kernels launched so far, template arguments dropped.
inline std::set<std::string>& launched() {
  static std::set<std::string> names;
  return names;
}

constexpr int kWarpSize = 32;
constexpr unsigned int kMaxThreads = 1024;
constexpr size_t kMaxShared = 48 * 1024;  // static + dynamic, without CUDA's opt-in
constexpr size_t kSharedArenaBytes = 64 * 1024;
#if NGK_EMU_ASAN
constexpr size_t kStackBytes = 512 * 1024;
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif

enum class State { kRunnable, kBarrier, kWarp, kDone };
enum class WarpOp { kShfl, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll, kSync };

struct Fiber {
  ucontext_t ctx;
  char* stack = nullptr;  // kStackBytes, with a guard page below
  State state = State::kRunnable;
  uint3 tid{0, 0, 0};
  // The warp collective it waits in.
  WarpOp op = WarpOp::kSync;
  unsigned int mask = 0;
  uint64_t value = 0;   // the value it offers (bits) or its predicate
  int arg = 0;          // source lane / delta / lane mask
  int width = kWarpSize;
  uint64_t result = 0;  // what the collective returns to it
#if NGK_EMU_ASAN
  void* fake_stack = nullptr;
#endif
};

// The state of the launch running on this host thread.
struct Launch {
  std::string kernel;
  dim3 grid, block;
  uint3 block_idx{0, 0, 0};
  std::function<void()> body;
  std::vector<Fiber> fibers;
  int current = -1;
  ucontext_t scheduler;
  std::string error;  // set by a fiber: the block is abandoned and the launch throws
  // Shared memory of the running block: static declarations in order of first reach, then the
  // dynamic part.
  std::vector<unsigned char> arena = std::vector<unsigned char>(kSharedArenaBytes);
  struct SharedDecl {
    const void* tag;  // the declaration's own static tag
    size_t offset, bytes;
  };
  std::vector<SharedDecl> shared_decls;
  size_t shared_top = 0;
  size_t dynamic_bytes = 0;
#if NGK_EMU_ASAN
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
#endif
};

inline thread_local Launch* current_launch = nullptr;

}  // namespace ngk_emu

// The built-in variables, set by the scheduler before it resumes a thread.
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace ngk_emu {

inline Launch& launch_state() {
  if (current_launch == nullptr) throw std::runtime_error("CUDA device code called outside a launch");
  return *current_launch;
}

// ---- fiber switching (with AddressSanitizer's fiber annotations when it is on)
inline void switch_to_scheduler(Launch& L, bool exiting) {
  Fiber& f = L.fibers[L.current];
#if NGK_EMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.fake_stack, L.scheduler_stack_bottom,
                                 L.scheduler_stack_size);
#else
  (void)exiting;
#endif
  swapcontext(&f.ctx, &L.scheduler);
#if NGK_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
}

inline void resume(Launch& L, int i) {
  Fiber& f = L.fibers[i];
  L.current = i;
  threadIdx = f.tid;
#if NGK_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, kStackBytes);
#endif
  swapcontext(&L.scheduler, &f.ctx);
#if NGK_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  L.current = -1;
}

inline void fiber_entry() {
  Launch& L = *current_launch;
#if NGK_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &L.scheduler_stack_bottom, &L.scheduler_stack_size);
#endif
  try {
    L.body();
  } catch (const std::exception& e) {
    if (L.error.empty()) L.error = L.kernel + ": exception in the kernel: " + e.what();
  } catch (...) {
    if (L.error.empty()) L.error = L.kernel + ": exception in the kernel";
  }
  L.fibers[L.current].state = State::kDone;
  switch_to_scheduler(L, /*exiting=*/true);
}

// A fiber records an emulation error and never runs again.
[[noreturn]] inline void fail(Launch& L, const std::string& what) {
  if (L.error.empty()) L.error = what;
  L.fibers[L.current].state = State::kDone;
  switch_to_scheduler(L, /*exiting=*/true);
  __builtin_unreachable();
}

inline std::string block_name(const Launch& L) {
  return L.kernel + " block (" + std::to_string(L.block_idx.x) + ", " +
         std::to_string(L.block_idx.y) + ", " + std::to_string(L.block_idx.z) + ")";
}

inline int linear_tid(const uint3& t, const dim3& b) {
  return static_cast<int>(t.x + b.x * (t.y + b.y * t.z));
}

// ---- shared memory
// The static region starts at 0; the dynamic one starts at dynamic_base(), 16-byte aligned, below
// the end of the arena. Static + dynamic <= kMaxShared keeps them apart.
inline size_t dynamic_base(const Launch& L) {
  return (kSharedArenaBytes - L.dynamic_bytes) & ~size_t{15};
}

// The array of one NGK_SHARED declaration (tag: that declaration's static object), placed by the
// first thread that reaches it.
inline void* shared_declaration(const void* tag, size_t bytes) {
  Launch& L = launch_state();
  for (const auto& d : L.shared_decls) {
    if (d.tag == tag) return L.arena.data() + d.offset;
  }
  const size_t offset = (L.shared_top + 15) / 16 * 16;
  if (offset + bytes + L.dynamic_bytes > kMaxShared) {
    fail(L, block_name(L) + ": more than 48 KiB of shared memory (static + dynamic)");
  }
  L.shared_decls.push_back({tag, offset, bytes});
  L.shared_top = offset + bytes;
#if NGK_EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(L.arena.data() + offset, bytes);
#endif
  return L.arena.data() + offset;
}

template <typename T, size_t N>
T (&shared_array(const void* tag))[N] {
  return *static_cast<T(*)[N]>(shared_declaration(tag, sizeof(T) * N));
}

template <typename T>
T* dynamic_shared() {
  Launch& L = launch_state();
  return reinterpret_cast<T*>(L.arena.data() + dynamic_base(L));
}

// ---- barriers and warp collectives (called from a fiber)
inline void syncthreads() {
  Launch& L = launch_state();
  L.fibers[L.current].state = State::kBarrier;
  switch_to_scheduler(L, false);
}

template <typename T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp value of <= 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}

template <typename T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

inline uint64_t warp_collective(WarpOp op, unsigned int mask, uint64_t value, int arg, int width) {
  Launch& L = launch_state();
  Fiber& f = L.fibers[L.current];
  const int lane = linear_tid(f.tid, L.block) % kWarpSize;
  if (!((mask >> lane) & 1u)) {
    fail(L, block_name(L) + ": lane " + std::to_string(lane) +
                " calls a warp collective with a mask that does not name it");
  }
  if (width <= 0 || width > kWarpSize || (width & (width - 1)) != 0) {
    fail(L, block_name(L) + ": shuffle width must be a power of 2 <= 32, got " +
                std::to_string(width));
  }
  f.op = op;
  f.mask = mask;
  f.value = value;
  f.arg = arg & (kWarpSize - 1);  // the hardware reads the low 5 bits
  f.width = width;
  f.state = State::kWarp;
  switch_to_scheduler(L, false);
  return f.result;
}

// Completes the collective that the lanes of the warp starting at thread w0 wait in, if every
// non-exited lane of its mask has arrived: computes every lane's result and returns the lanes
// released (else none). Sets L.error when lanes of one mask meet in different collectives.
inline std::vector<int> resolve_warp(Launch& L, int w0) {
  const int n = static_cast<int>(L.fibers.size());
  const int lanes = std::min(kWarpSize, n - w0);
  for (int lane = 0; lane < lanes; ++lane) {
    const Fiber& f = L.fibers[w0 + lane];
    if (f.state != State::kWarp) continue;
    bool complete = true;
    for (int other = 0; other < lanes && complete; ++other) {
      if (!((f.mask >> other) & 1u)) continue;
      const Fiber& g = L.fibers[w0 + other];
      if (g.state == State::kDone) continue;  // exited lanes do not take part
      if (g.state != State::kWarp) {
        complete = false;
      } else if (g.mask != f.mask || g.op != f.op || g.width != f.width) {
        L.error = block_name(L) + ": lanes " + std::to_string(lane) + " and " +
                  std::to_string(other) + " meet in different warp collectives or masks";
        return {};
      }
    }
    if (!complete) continue;
    const unsigned int mask = f.mask;
    auto takes_part = [&](int other) {
      return other < lanes && ((mask >> other) & 1u) && L.fibers[w0 + other].state == State::kWarp;
    };
    uint64_t ballot = 0, participants = 0;
    for (int other = 0; other < lanes; ++other) {
      if (!takes_part(other)) continue;
      participants |= 1ull << other;
      if (L.fibers[w0 + other].value != 0) ballot |= 1ull << other;
    }
    std::vector<int> released;
    for (int other = 0; other < lanes; ++other) {
      if (!takes_part(other)) continue;
      Fiber& g = L.fibers[w0 + other];
      const int seg = other & ~(g.width - 1), pos = other & (g.width - 1);
      int src = other;
      switch (g.op) {
        case WarpOp::kShfl: src = seg + (g.arg & (g.width - 1)); break;
        case WarpOp::kShflUp: src = pos >= g.arg ? other - g.arg : other; break;
        case WarpOp::kShflDown: src = pos + g.arg < g.width ? other + g.arg : other; break;
        case WarpOp::kShflXor: {
          // Earlier groups of `width` lanes can be read; a later group gives the lane its own value.
          const int x = other ^ g.arg;
          src = x < seg + g.width ? x : other;
          break;
        }
        default: break;
      }
      switch (g.op) {
        case WarpOp::kBallot: g.result = ballot; break;
        case WarpOp::kAny: g.result = ballot != 0; break;
        case WarpOp::kAll: g.result = ballot == participants; break;
        case WarpOp::kSync: g.result = 0; break;
        default:
          // Reading a lane that does not take part is undefined in CUDA: all-ones bits (NaN, -1).
          g.result = takes_part(src) ? L.fibers[w0 + src].value : ~uint64_t{0};
      }
      released.push_back(w0 + other);
    }
    for (int i : released) L.fibers[i].state = State::kRunnable;
    return released;
  }
  return {};
}

// Why the lanes still waiting in warp collectives can never complete (every thread is blocked).
inline std::string stuck_warps(const Launch& L) {
  const int n = static_cast<int>(L.fibers.size());
  for (int i = 0; i < n; ++i) {
    const Fiber& f = L.fibers[i];
    if (f.state != State::kWarp) continue;
    const int w0 = i / kWarpSize * kWarpSize;
    for (int other = 0; other < kWarpSize && w0 + other < n; ++other) {
      if (((f.mask >> other) & 1u) && L.fibers[w0 + other].state == State::kBarrier) {
        return block_name(L) + ": warp mask names lane " + std::to_string(other) +
               ", which waits in __syncthreads";
      }
    }
  }
  return block_name(L) + ": threads wait in warp collectives whose lanes never arrive";
}

// The order in which the threads of a block run in phase `phase` (between two barriers).
inline std::vector<int> thread_order(int n, uint64_t block, uint64_t phase) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  const Config& cfg = config();
  if (cfg.order == Order::kReverse) {
    std::reverse(order.begin(), order.end());
  } else if (cfg.order == Order::kShuffle) {
    std::mt19937_64 rng(cfg.seed * 0x9E3779B97F4A7C15ull + block * 1000003ull + phase + 1);
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

// Fiber stacks, kept between launches (mmap'd, with a guard page below each).
inline std::vector<char*>& stack_pool() {
  static std::vector<char*> pool;
  return pool;
}

inline char* stack_for(size_t i) {
  auto& pool = stack_pool();
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  while (pool.size() <= i) {
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("emulated CUDA: cannot map a fiber stack");
    mprotect(p, page, PROT_NONE);
    pool.push_back(static_cast<char*>(p) + page);
  }
  return pool[i];
}

inline void run_block(Launch& L, uint64_t block_linear) {
  const int n = static_cast<int>(L.block.x * L.block.y * L.block.z);
  // Shared memory: 0xFF everywhere (NaN floats), poisoned until declared.
#if NGK_EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(L.arena.data(), kSharedArenaBytes);
#endif
  std::fill(L.arena.begin(), L.arena.end(), static_cast<unsigned char>(0xFF));
  L.shared_decls.clear();
  L.shared_top = 0;
#if NGK_EMU_ASAN
  const size_t base = dynamic_base(L);
  ASAN_POISON_MEMORY_REGION(L.arena.data(), base);
  ASAN_POISON_MEMORY_REGION(L.arena.data() + base + L.dynamic_bytes,
                            kSharedArenaBytes - base - L.dynamic_bytes);
#endif
  L.fibers.assign(n, Fiber{});
  for (int i = 0; i < n; ++i) {
    Fiber& f = L.fibers[i];
    f.tid = uint3{static_cast<unsigned>(i % L.block.x),
                  static_cast<unsigned>((i / L.block.x) % L.block.y),
                  static_cast<unsigned>(i / (L.block.x * L.block.y))};
    f.stack = stack_for(i);
#if NGK_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(f.stack, kStackBytes);  // leftovers of an abandoned block
#endif
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  uint64_t phase = 0;
  std::vector<int> order = thread_order(n, block_linear, phase);
  std::vector<int> position(n);
  auto by_position = [&](int a, int b) { return position[a] < position[b]; };
  for (;;) {
    for (int i = 0; i < n; ++i) position[order[i]] = i;
    for (int first : order) {
      // Run the thread, then at once every lane its arrival (or exit) releases from a warp
      // collective, and the lanes those release, before any other thread.
      std::vector<int> ready{first};
      while (!ready.empty()) {
        const int i = ready.back();
        ready.pop_back();
        if (L.fibers[i].state != State::kRunnable) continue;
        resume(L, i);
        if (!L.error.empty()) return;
        std::vector<int> released = resolve_warp(L, i / kWarpSize * kWarpSize);
        if (!L.error.empty()) return;
        std::sort(released.begin(), released.end(), by_position);
        ready.insert(ready.end(), released.rbegin(), released.rend());
      }
    }
    int at_barrier = 0, done = 0, at_warp = 0;
    for (const Fiber& f : L.fibers) {
      at_barrier += f.state == State::kBarrier;
      done += f.state == State::kDone;
      at_warp += f.state == State::kWarp;
    }
    if (done == n) return;
    if (at_warp > 0) {
      L.error = stuck_warps(L);
      return;
    }
    if (done > 0) {
      L.error = block_name(L) + ": __syncthreads() reached by " + std::to_string(at_barrier) +
                " of " + std::to_string(n) +
                " threads (the others exited): a barrier in divergent code";
      return;
    }
    for (Fiber& f : L.fibers) f.state = State::kRunnable;  // the barrier releases
    order = thread_order(n, block_linear, ++phase);
  }
}

// The kernel's qualified name from the pretty function of launch_name<Kernel>.
template <auto Kernel>
std::string launch_name() {
  std::string_view p = __PRETTY_FUNCTION__;
  const size_t eq = p.find("Kernel = ");
  std::string_view name = eq == std::string_view::npos ? p : p.substr(eq + 9);
  std::string out;
  int depth = 0;
  for (char ch : name) {
    if (depth == 0 && (ch == ';' || ch == ']')) break;
    if (ch == '<') ++depth;
    if (depth == 0 && ch != '&' && ch != '(' && ch != ')' && ch != ' ') out += ch;
    if (ch == '>') --depth;
  }
  const std::string anon = "{anonymous}::";
  for (size_t at; (at = out.find(anon)) != std::string::npos;) out.erase(at, anon.size());
  return out;
}

inline void check_launch(const std::string& kernel, dim3 grid, dim3 block, size_t dynamic_shared) {
  auto bad = [&](const std::string& why) {
    throw std::runtime_error("emulated CUDA launch of " + kernel + ": invalid configuration: " + why);
  };
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) bad("empty grid");
  if (block.x == 0 || block.y == 0 || block.z == 0) bad("empty block");
  if (static_cast<uint64_t>(block.x) * block.y * block.z > kMaxThreads) bad("more than 1024 threads per block");
  if (block.z > 64) bad("block.z > 64");
  if (grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u) bad("grid too large");
  if (dynamic_shared > kMaxShared) bad("more than 48 KiB of dynamic shared memory");
}

// Runs body (the kernel call) as every thread of every block of grid x block.
inline void run(const std::string& kernel, dim3 grid, dim3 block, size_t dynamic_shared,
                std::function<void()> body) {
  check_launch(kernel, grid, block, dynamic_shared);
  static std::mutex one_launch_at_a_time;  // the pools and knobs are process-wide
  std::lock_guard<std::mutex> lock(one_launch_at_a_time);
  launched().insert(kernel);
  const Config& cfg = config();
  if (cfg.max_blocks > 0) grid.x = static_cast<unsigned>(std::min<int64_t>(grid.x, cfg.max_blocks));
  Launch L;
  L.kernel = kernel;
  L.grid = grid;
  L.block = block;
  L.body = std::move(body);
  L.dynamic_bytes = dynamic_shared;
  const uint64_t blocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  std::vector<uint64_t> block_order(blocks);
  std::iota(block_order.begin(), block_order.end(), 0);
  std::mt19937_64 rng(cfg.seed + 12345);
  std::shuffle(block_order.begin(), block_order.end(), rng);
  gridDim = grid;
  blockDim = block;
  current_launch = &L;
  struct Reset {
    ~Reset() { current_launch = nullptr; }
  } reset;
  for (uint64_t b : block_order) {
    L.block_idx = uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                        static_cast<unsigned>(b / (static_cast<uint64_t>(grid.x) * grid.y))};
    blockIdx = L.block_idx;
    run_block(L, b);
    if (!L.error.empty()) break;
  }
#if NGK_EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(L.arena.data(), kSharedArenaBytes);
#endif
  if (!L.error.empty()) throw std::runtime_error("emulated CUDA: " + L.error);
}

}  // namespace ngk_emu

// ---- device functions the kernels call
inline void __syncthreads() { ngk_emu::syncthreads(); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) {
  ngk_emu::warp_collective(ngk_emu::WarpOp::kSync, mask, 0, 0, ngk_emu::kWarpSize);
}

template <typename T>
T __shfl_sync(unsigned int mask, T var, int src_lane, int width = 32) {
  return ngk_emu::from_bits<T>(ngk_emu::warp_collective(ngk_emu::WarpOp::kShfl, mask,
                                                        ngk_emu::to_bits(var), src_lane, width));
}
template <typename T>
T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = 32) {
  return ngk_emu::from_bits<T>(ngk_emu::warp_collective(
      ngk_emu::WarpOp::kShflUp, mask, ngk_emu::to_bits(var), static_cast<int>(delta), width));
}
template <typename T>
T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = 32) {
  return ngk_emu::from_bits<T>(ngk_emu::warp_collective(
      ngk_emu::WarpOp::kShflDown, mask, ngk_emu::to_bits(var), static_cast<int>(delta), width));
}
template <typename T>
T __shfl_xor_sync(unsigned int mask, T var, int lane_mask, int width = 32) {
  return ngk_emu::from_bits<T>(ngk_emu::warp_collective(ngk_emu::WarpOp::kShflXor, mask,
                                                        ngk_emu::to_bits(var), lane_mask, width));
}
inline unsigned int __ballot_sync(unsigned int mask, int predicate) {
  return static_cast<unsigned int>(
      ngk_emu::warp_collective(ngk_emu::WarpOp::kBallot, mask, predicate != 0, 0, 32));
}
inline int __any_sync(unsigned int mask, int predicate) {
  return static_cast<int>(
      ngk_emu::warp_collective(ngk_emu::WarpOp::kAny, mask, predicate != 0, 0, 32));
}
inline int __all_sync(unsigned int mask, int predicate) {
  return static_cast<int>(
      ngk_emu::warp_collective(ngk_emu::WarpOp::kAll, mask, predicate != 0, 0, 32));
}

// Atomics: fibers are never preempted inside one, so a read-modify-write is atomic as it is.
namespace ngk_emu {
template <typename T, typename F>
T read_modify_write(T* address, F update) {
  const T old = *address;
  *address = update(old);
  return old;
}
}  // namespace ngk_emu

template <typename T, typename U>
T gpuAtomicAdd(T* address, U value) {
  return ngk_emu::read_modify_write(address,
                                    [&](T old) { return static_cast<T>(old + static_cast<T>(value)); });
}
template <typename T, typename U>
T atomicAdd(T* address, U value) {
  return gpuAtomicAdd(address, value);
}
template <typename T, typename U>
T atomicMax(T* address, U value) {
  return ngk_emu::read_modify_write(address,
                                    [&](T old) { return std::max(old, static_cast<T>(value)); });
}
template <typename T, typename U>
T atomicMin(T* address, U value) {
  return ngk_emu::read_modify_write(address,
                                    [&](T old) { return std::min(old, static_cast<T>(value)); });
}
template <typename T, typename U>
T atomicExch(T* address, U value) {
  return ngk_emu::read_modify_write(address, [&](T) { return static_cast<T>(value); });
}
template <typename T>
T atomicCAS(T* address, T compare, T value) {
  const T old = *address;
  if (old == compare) *address = value;
  return old;
}
