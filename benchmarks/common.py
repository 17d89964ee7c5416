"""Timing and memory helpers shared by the benchmark scripts (ratios are measured in one run)."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import statistics
import time

import torch

CPU_CAPABILITY_ENV = "NERFGAN_KERNELS_CPU_CAPABILITY"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn, device: torch.device, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_memory_mb(fn, device: torch.device) -> float | None:
    """Peak CUDA memory of ``fn()`` in MiB (None on the CPU, where torch does not track it)."""
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _release_free_memory() -> None:
    """Returns the allocator's free pages to the OS (glibc's malloc_trim; a no-op elsewhere), so
    that memory a previous run freed is not reused unseen by the next measurement."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss_mib(fn) -> float | None:
    """Peak RSS of fn() above the RSS before it, MiB (None where Linux's counters are absent).
    fn runs once first (one-time costs: thread pools, lazy initialisation) and the free pages go
    back to the OS before the measured run."""
    fn()
    _release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        before = _rss_kib("VmRSS:")
    except OSError:
        return None
    fn()
    return (_rss_kib("VmHWM:") - before) / 1024


def peak_memory(fn, device: torch.device) -> float | None:
    """Peak memory of fn() in MiB: CUDA's allocator peak, or on the CPU the peak RSS above the RSS
    before it (peak_rss_mib)."""
    return peak_memory_mb(fn, device) if device.type == "cuda" else peak_rss_mib(fn)


def print_table(title: str, rows: list[dict]) -> str:
    """Print rows as a markdown table (and return it)."""
    cols = list(rows[0].keys())
    lines = [f"### {title}", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"


def kernel_paths(device: torch.device) -> list[str | None]:
    """The kernel variants to time on ``device``: on the CPU the best instruction set and the
    baseline ("default"), on CUDA the one kernel (None)."""
    if device.type != "cpu":
        return [None]
    from nerfgan_kernels import _ext

    paths = list(_ext._C.cpu_capabilities()) if _ext.extension_available() else ["default"]
    return [paths[-1]] + (["default"] if len(paths) > 1 else [])


@contextlib.contextmanager
def kernel_path(path: str | None):
    """Runs the CPU kernels on instruction set ``path`` (None: unchanged). The PyTorch reference
    is untouched: it runs at torch's own default capability."""
    if path is None:
        yield
        return
    old = os.environ.get(CPU_CAPABILITY_ENV)
    os.environ[CPU_CAPABILITY_ENV] = path
    try:
        yield
    finally:
        if old is None:
            del os.environ[CPU_CAPABILITY_ENV]
        else:
            os.environ[CPU_CAPABILITY_ENV] = old


def bench_args(doc: str, repeats: int = 5, devices=("cpu", "cuda", "all"), default_device="all",
               argv=None, extra=None):
    """The benchmarks' shared command line: --device, --repeats, --out (+ ``extra(parser)``)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--device", default=default_device, choices=list(devices))
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--out", help="append the markdown table to this file")
    if extra is not None:
        extra(ap)
    return ap.parse_args(argv)


def selected_devices(choice: str) -> list[torch.device]:
    """"cpu", "cuda" or "all" -> the devices present here (CUDA only with a GPU)."""
    out = [torch.device("cpu")] if choice in ("cpu", "all") else []
    if choice in ("cuda", "all") and torch.cuda.is_available():
        out.append(torch.device("cuda"))
    return out


def emit(title: str, rows: list[dict], notes: list[str] = (), out: str | None = None) -> str:
    """Print the table and notes; append both to ``out`` when given. Returns the text."""
    text = print_table(title, rows)
    if notes:
        text += "\n" + "\n".join(f"- {x}" for x in notes) + "\n"
        print("\n".join(notes))
    if out:
        with open(out, "a") as f:
            f.write(text + "\n")
    return text
