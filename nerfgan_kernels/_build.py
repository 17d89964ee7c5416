"""Build configuration of the ``nerfgan_kernels._C`` extension.

Shared by ``setup.py`` (install-time build) and :func:`load_jit` (just-in-time build for
development). It must not import the ``nerfgan_kernels`` package itself.

Environment variables:
  NERFGAN_KERNELS_CUDA   "1" force the CUDA kernels (error if impossible), "0" skip them,
                         unset: build them when torch is a CUDA build and nvcc is found.
  TORCH_CUDA_ARCH_LIST   GPU architectures; default "8.0;8.6;9.0+PTX" (Ampere, Hopper + PTX).
  CUDA_HOME              CUDA toolkit root; default: found from nvcc (wrappers are resolved).
  MAX_JOBS               parallel compile jobs (read by torch's ninja build).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
DEFAULT_ARCH_LIST = "8.0;8.6;9.0+PTX"


def _is_toolkit(path: str) -> bool:
    return (
        os.path.isfile(os.path.join(path, "bin", "nvcc"))
        and os.path.isfile(os.path.join(path, "include", "cuda_runtime.h"))
        and os.path.isdir(os.path.join(path, "lib64"))
    )


def find_cuda_home() -> str | None:
    """The CUDA toolkit directory holding bin/nvcc, include/cuda_runtime.h and lib64.

    ``nvcc`` on PATH may be a wrapper script outside the toolkit, so candidates are checked for
    all three rather than taken from the location of ``nvcc``.
    """
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        real = os.path.realpath(nvcc)
        candidates.append(os.path.dirname(os.path.dirname(real)))
    candidates += ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    for path in candidates:
        if path and _is_toolkit(path):
            return os.path.realpath(path)
    return None


def _nvidia_wheel_includes() -> list[str]:
    """Include dirs of torch's CUDA wheels (cublas/cusparse headers that ATen's CUDA headers use)."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    found = []
    for base in spec.submodule_search_locations:
        found += sorted(glob.glob(os.path.join(base, "cu*", "include")))
    return [d for d in found if os.path.isdir(d)]


def want_cuda() -> bool:
    """Whether to compile the CUDA kernels (see NERFGAN_KERNELS_CUDA)."""
    import torch

    flag = os.environ.get("NERFGAN_KERNELS_CUDA", "").strip()
    possible = torch.version.cuda is not None and find_cuda_home() is not None
    if flag == "0":
        return False
    if flag == "1":
        if not possible:
            raise RuntimeError(
                "NERFGAN_KERNELS_CUDA=1 but CUDA kernels cannot be built: torch.version.cuda="
                f"{torch.version.cuda!r}, CUDA toolkit={find_cuda_home()!r}"
            )
        return True
    return possible


def sources(with_cuda: bool) -> list[str]:
    files = sorted(glob.glob(os.path.join(CSRC, "**", "*.cpp"), recursive=True))
    if with_cuda:
        files += sorted(glob.glob(os.path.join(CSRC, "**", "*.cu"), recursive=True))
    return [os.path.relpath(f, ROOT) for f in files]


def extension_kwargs(with_cuda: bool) -> dict:
    """Keyword arguments for CppExtension/CUDAExtension (also prepares the environment)."""
    if with_cuda:
        cuda_home = find_cuda_home()
        os.environ.setdefault("CUDA_HOME", cuda_home)
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCH_LIST)
    # -fno-trapping-math: the kernels never read floating-point exception flags; without it GCC
    # will not if-convert the selects of csrc/cpu/vmath.h, so those loops stay scalar.
    cxx = ["-O3", "-fopenmp", "-fno-trapping-math"]
    kwargs = {
        "sources": sources(with_cuda),
        "include_dirs": [CSRC] + (_nvidia_wheel_includes() if with_cuda else []),
        "extra_compile_args": {"cxx": cxx},
        "extra_link_args": ["-fopenmp"],
        "define_macros": [],
    }
    if with_cuda:
        kwargs["define_macros"].append(("NERFGAN_KERNELS_WITH_CUDA", None))
        kwargs["extra_compile_args"]["nvcc"] = ["-O3", "-lineinfo"]
    return kwargs


def make_extension():
    """The setuptools Extension for nerfgan_kernels._C (CUDAExtension or CppExtension)."""
    with_cuda = want_cuda()
    if with_cuda:  # cpp_extension reads CUDA_HOME when imported
        os.environ.setdefault("CUDA_HOME", find_cuda_home())
    from torch.utils import cpp_extension

    if with_cuda and cpp_extension.CUDA_HOME != os.environ["CUDA_HOME"]:
        cpp_extension.CUDA_HOME = os.environ["CUDA_HOME"]  # imported earlier with a wrong guess
    cls = cpp_extension.CUDAExtension if with_cuda else cpp_extension.CppExtension
    return cls("nerfgan_kernels._C", **extension_kwargs(with_cuda))


def load_jit(verbose: bool = False):
    """Build and import the extension just in time (development without pip install)."""
    with_cuda = want_cuda()
    if with_cuda:
        os.environ.setdefault("CUDA_HOME", find_cuda_home())
    from torch.utils import cpp_extension

    kw = extension_kwargs(with_cuda)
    flags = [f"-D{name}" for name, _ in kw["define_macros"]]
    return cpp_extension.load(
        name="nerfgan_kernels_C",
        sources=[os.path.join(ROOT, s) for s in kw["sources"]],
        extra_include_paths=kw["include_dirs"],
        extra_cflags=kw["extra_compile_args"]["cxx"] + flags,
        extra_cuda_cflags=kw["extra_compile_args"].get("nvcc", []) + flags,
        extra_ldflags=kw["extra_link_args"],
        with_cuda=with_cuda,
        verbose=verbose,
    )
