import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["NERFGAN_OFFLINE"] = "1"  # no test may reach the network (subprocesses inherit it)

import pytest  # noqa: E402

CPU_CAPABILITY_ENV = "NERFGAN_KERNELS_CPU_CAPABILITY"


def _cpu_paths() -> list[str]:
    """Every CPU instruction-set path of the kernels this machine can run (baseline first)."""
    try:
        from nerfgan_kernels import _ext
    except ImportError:
        return ["default"]
    return list(_ext._C.cpu_capabilities()) if _ext.extension_available() else ["default"]


@pytest.fixture(params=_cpu_paths())
def cpu_path(request, monkeypatch):
    """Runs the test once per CPU kernel path (NERFGAN_KERNELS_CPU_CAPABILITY)."""
    monkeypatch.setenv(CPU_CAPABILITY_ENV, request.param)
    return request.param


@pytest.fixture(scope="module")
def emu():
    """The emulated-CUDA module (tests/emulated/build.py: the CUDA kernels run on the CPU)."""
    from emulated import build as emulated_build
    return emulated_build.build()


@pytest.fixture
def default_emulation(emu):
    """The emulator's default schedule (seed 0, shuffled blocks, no grid cap) around a test; the
    emulated test modules apply it to every test (pytestmark)."""
    emu.emulation_config(seed=0, order="shuffle", max_blocks=0)
    yield
    emu.emulation_config(seed=0, order="shuffle", max_blocks=0)
