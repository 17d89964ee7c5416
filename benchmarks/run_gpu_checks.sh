#!/usr/bin/env bash
# Everything only a GPU can check, in one call, as it is on the lent machine (its own python3 with
# torch + CUDA, no package registry; lpips / imageio-ffmpeg may be missing: tests that need them
# skip). In order, each step under its own time limit so the whole stays within ~8 minutes:
#   1. build the extension there (--no-deps --no-build-isolation; TORCH_CUDA_ARCH_LIST, default 9.0)
#   2. the CUDA tests (pytest -k "cuda and not emulated")
#   3. compute-sanitizer memcheck, racecheck, synccheck, initcheck on every kernel
#      (benchmarks/gpu_sanitize.py: each op once, forward and backward, checked against the CPU)
#   4. the CUDA benchmarks
# and writes the dated table to ${OUT:-benchmarks/results}/gpu-<date>.md.
#
#   bash benchmarks/run_gpu_checks.sh            (from the repository root)
set -uo pipefail
cd "$(dirname "$0")/.."
DEST="${OUT:-benchmarks/results}"
mkdir -p "$DEST"
REPORT="$DEST/gpu-$(date -u +%Y-%m-%d).md"
PY="${PYTHON:-python3}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export PYTHONUNBUFFERED=1
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }
fence() { echo '```'; }

{
  echo "# GPU checks, $(date -u +%Y-%m-%d)"
  echo
  echo "Commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); device:" \
       "$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))' 2>&1 | tail -1)," \
       "torch $("$PY" -c 'import torch; print(torch.__version__)' 2>&1 | tail -1)," \
       "nvcc $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' | head -1)," \
       "arch list $TORCH_CUDA_ARCH_LIST"
  echo
  echo "## 1. Build ($(elapsed))"
  fence
  NERFGAN_KERNELS_CUDA=1 timeout 240 "$PY" -m pip install -q --no-deps --no-build-isolation \
    --no-index -e . 2>&1 | tail -5
  "$PY" -c "import nerfgan_kernels as n; print('cuda kernels compiled:', n.cuda_available())" 2>&1 | tail -2
  fence
  echo "## 2. CUDA tests ($(elapsed))"
  fence
  timeout 150 "$PY" -m pytest -q -p no:cacheprovider -rs -k "cuda and not emulated" tests 2>&1 | tail -20
  fence
  echo "## 3. compute-sanitizer ($(elapsed))"
  if command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck synccheck initcheck; do
      echo "### $tool"
      fence
      timeout 90 compute-sanitizer --tool "$tool" --error-exitcode 1 "$PY" benchmarks/gpu_sanitize.py 2>&1 | tail -14
      echo "exit status: ${PIPESTATUS[0]}"
      fence
    done
  else
    echo "compute-sanitizer not found"
  fi
  echo "## 4. Benchmarks (cuda) ($(elapsed))"
} > "$REPORT"
for b in bench_triplane bench_composite bench_render bench_fused; do
  timeout 60 "$PY" "benchmarks/$b.py" --device cuda --out "$REPORT" > /dev/null 2>&1 || echo "$b failed or timed out" >> "$REPORT"
done
timeout 90 "$PY" benchmarks/bench_generator.py --device cuda --repeats 3 --out "$REPORT" > /dev/null 2>&1 \
  || echo "bench_generator failed or timed out" >> "$REPORT"
echo "Total $(elapsed)." >> "$REPORT"
cat "$REPORT"
