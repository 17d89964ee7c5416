// The emulated module's extra bindings (included by csrc/bindings.cpp only when NGK_EMULATE_CUDA
// is defined): the emulator's controls and its own test kernels.
#pragma once

#include <torch/extension.h>

#include <string>
#include <vector>

#include "emulated_cuda.h"
#include "test_kernels.h"

namespace ngk_emu {

inline void bind(pybind11::module_& m) {
  namespace py = pybind11;
  m.attr("emulated") = true;
  m.def(
      "emulation_config",
      [](uint64_t seed, const std::string& order, int64_t max_blocks) {
        Config& c = config();
        if (order == "forward") {
          c.order = Order::kForward;
        } else if (order == "reverse") {
          c.order = Order::kReverse;
        } else if (order == "shuffle") {
          c.order = Order::kShuffle;
        } else {
          throw std::invalid_argument("order must be \"forward\", \"reverse\" or \"shuffle\", got \"" +
                                      order + "\"");
        }
        c.seed = seed;
        c.max_blocks = max_blocks;
      },
      py::arg("seed") = 0, py::arg("order") = "shuffle", py::arg("max_blocks") = 0,
      "Seed of the block / thread orders, thread order after each barrier, cap on grid.x (0: none).");
  m.def("emulation_launched", [] {
    return std::vector<std::string>(launched().begin(), launched().end());
  }, "Qualified names of the kernels launched so far (template arguments dropped).");
  m.def("test_block_reverse", &ngk_emu_tests::block_reverse, py::arg("input"), py::arg("block"),
        py::arg("sync"));
  m.def("test_warp_ops", &ngk_emu_tests::warp_ops, py::arg("input"), py::arg("block"));
  m.def("test_launch", &ngk_emu_tests::launch_noop, py::arg("grid"), py::arg("block"),
        py::arg("dynamic_shared"));
  m.def("test_divergent_barrier", &ngk_emu_tests::divergent_barrier);
  m.def("test_full_mask_in_partial_warp", &ngk_emu_tests::full_mask_in_partial_warp);
  m.def("test_warp_waits_for_barrier", &ngk_emu_tests::warp_waits_for_barrier);
  m.def("test_block2d", &ngk_emu_tests::block2d, py::arg("input"));
  m.def("test_uninitialized_shared", &ngk_emu_tests::uninitialized_shared, py::arg("block"));
  m.def("test_shared_write", &ngk_emu_tests::shared_write, py::arg("offset"));
}

}  // namespace ngk_emu
