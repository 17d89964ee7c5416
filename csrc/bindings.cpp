// The Python module nerfgan_kernels._C. The ops themselves are registered with the dispatcher
// (ops.cpp) when the module is loaded; this module only says how it was built.
#include <torch/extension.h>

#include <string>
#include <vector>

#include "common/macros.h"
#include "cpu/capability.h"

#ifdef NGK_EMULATE_CUDA
#include "emulation_bindings.h"  // tests/emulated: the emulator's controls and test kernels
#endif

#define NGK_STRINGIFY_(x) #x
#define NGK_STRINGIFY(x) NGK_STRINGIFY_(x)

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "nerfgan_kernels fused ops (CPU and, when compiled in, CUDA kernels); the ops are "
            "torch.ops." NGK_STRINGIFY(NGK_LIBRARY);
  m.attr("library") = NGK_STRINGIFY(NGK_LIBRARY);
#ifdef NERFGAN_KERNELS_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  namespace cpu = nerfgan_kernels::cpu;
  m.def("cpu_capability", [] { return std::string(cpu::name(cpu::current())); },
        "The CPU kernels' instruction set now (NERFGAN_KERNELS_CPU_CAPABILITY or the best).");
  m.def("cpu_capabilities", [] {
    std::vector<std::string> names;
    for (int c = 0; c <= static_cast<int>(cpu::best_supported()); ++c) {
      names.emplace_back(cpu::name(static_cast<cpu::Capability>(c)));
    }
    return names;
  }, "Every instruction set this CPU can run, baseline first.");
#ifdef NGK_EMULATE_CUDA
  ngk_emu::bind(m);
#endif
}
