// The one pybind11 module of nerfgan_kernels: every op is registered here and nowhere else.
#include <torch/extension.h>

#include "render/composite.h"
#include "render/importance.h"
#include "triplane/triplane_sample.h"
#ifdef NGK_EMULATE_CUDA
#include "emulation_bindings.h"  // tests/emulated: the emulator's controls and test kernels
#endif

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "nerfgan_kernels fused ops (CPU and, when compiled in, CUDA kernels)";
#ifdef NERFGAN_KERNELS_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
#ifdef NGK_EMULATE_CUDA
  ngk_emu::bind(m);
#endif
  // ---- triplane_sample
  m.def("triplane_sample_forward", &nerfgan_kernels::triplane_sample_forward, py::arg("planes"),
        py::arg("coords"), py::arg("box_warp"), py::arg("reduce"));
  m.def("triplane_sample_backward", &nerfgan_kernels::triplane_sample_backward,
        py::arg("grad_out"), py::arg("planes"), py::arg("coords"), py::arg("box_warp"),
        py::arg("reduce"), py::arg("need_planes"), py::arg("need_coords"));

  // ---- composite (render/composite.h)
  m.def("composite_forward", &nerfgan_kernels::composite_forward, py::arg("colors"),
        py::arg("densities"), py::arg("depths"), py::arg("depth_range"), py::arg("white_back"),
        py::arg("t_min"), py::arg("alpha_min"));
  m.def("composite_backward", &nerfgan_kernels::composite_backward, py::arg("grad_rgb"),
        py::arg("grad_depth"), py::arg("grad_weights"), py::arg("colors"), py::arg("densities"),
        py::arg("depths"), py::arg("depth_range"), py::arg("stats"), py::arg("white_back"),
        py::arg("t_min"), py::arg("alpha_min"));

  // ---- sample_pdf, merge_samples (render/importance.h)
  m.def("sample_pdf_forward", &nerfgan_kernels::sample_pdf_forward, py::arg("depths_coarse"),
        py::arg("weights_coarse"), py::arg("u"));
  m.def("merge_samples_index", &nerfgan_kernels::merge_samples_index, py::arg("depths_a"),
        py::arg("depths_b"));
  m.def("merge_gather_forward", &nerfgan_kernels::merge_gather_forward, py::arg("index"),
        py::arg("values_a"), py::arg("values_b"));
  m.def("merge_gather_backward", &nerfgan_kernels::merge_gather_backward, py::arg("grad_out"),
        py::arg("index"), py::arg("Sa"), py::arg("Sb"), py::arg("need_a"), py::arg("need_b"));
}
