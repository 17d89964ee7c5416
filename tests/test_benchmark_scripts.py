"""Every benchmark script still starts (its imports resolve and its options parse): ``--help`` on
each, run as ``__main__`` in this process. The benchmarks are not run by the tests (speed is shown
by them, not asserted), so without this a renamed name in the package breaks a benchmark silently."""

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py")
                 if p.name not in ("common.py", "gpu_sanitize.py"))  # gpu_sanitize needs CUDA, no options


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_starts(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), "--help"])
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    assert done.value.code in (0, None)
    assert "usage" in capsys.readouterr().out.lower()
