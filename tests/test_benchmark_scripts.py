"""Every benchmark script still starts (its imports resolve and its options parse): ``--help`` on
each, in a subprocess. The benchmarks are not run by the tests (speed is shown by them, not
asserted), so without this a renamed name in the package breaks a benchmark silently."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py")
                 if p.name not in ("common.py", "gpu_sanitize.py"))  # gpu_sanitize needs CUDA, no options


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_starts(script):
    run = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True,
                         text=True, timeout=300, cwd=BENCHMARKS)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage" in run.stdout.lower() or run.stdout.strip(), script
