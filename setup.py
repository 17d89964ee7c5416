"""Build of nerfgan-kernels: `pip install -e . --no-build-isolation` (see nerfgan_kernels/_build.py
for the environment variables that control the CUDA build)."""

import importlib.util
import os

from setuptools import setup

_spec = importlib.util.spec_from_file_location(
    "_nerfgan_build", os.path.join(os.path.dirname(os.path.abspath(__file__)), "nerfgan_kernels",
                                   "_build.py"))
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)

# make_extension sets CUDA_HOME first: torch's cpp_extension reads it once, when imported.
extension = _build.make_extension()
from torch.utils.cpp_extension import BuildExtension  # noqa: E402

setup(
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
