#!/usr/bin/env bash
# Everything only a GPU can check, in one call (for sessions that are lent one):
#   CUDA build, CUDA tests, compute-sanitizer on the CUDA tests of each op, and the benchmarks
#   on cuda. Writes a dated markdown report to ${OUT:-benchmarks/results}/gpu-<date>.md.
#
#   bash benchmarks/run_gpu_checks.sh            (from the repository root)
set -uo pipefail
cd "$(dirname "$0")/.."
DEST="${OUT:-benchmarks/results}"
mkdir -p "$DEST"
REPORT="$DEST/gpu-$(date +%Y-%m-%d).md"
PY="${PYTHON:-python}"

if ! "$PY" -c "import nerfgan_kernels, sys; sys.exit(0 if nerfgan_kernels.cuda_available() else 1)" 2>/dev/null; then
  echo "building the extension with CUDA kernels"
  NERFGAN_KERNELS_CUDA=1 MAX_JOBS="${MAX_JOBS:-8}" "$PY" -m pip install -q -e . --no-build-isolation || exit 1
fi

{
  echo "# GPU checks, $(date -u +%Y-%m-%d)"
  echo
  echo "Device: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))'), torch $("$PY" -c 'import torch; print(torch.__version__)')"
  echo
  echo "## CUDA tests"
  echo '```'
  "$PY" -m pytest -q -k "cuda" tests 2>&1 | tail -15
  echo '```'
  if command -v compute-sanitizer >/dev/null 2>&1; then
    echo "## compute-sanitizer (memcheck) on the CUDA tests"
    for t in test_triplane_sample test_composite test_importance; do
      echo "### $t"
      echo '```'
      compute-sanitizer --tool memcheck --error-exitcode 1 "$PY" -m pytest -q -x -k cuda "tests/$t.py" 2>&1 | tail -6
      echo '```'
    done
  fi
  echo "## Benchmarks (cuda)"
} > "$REPORT"
for b in bench_triplane bench_composite bench_render; do
  "$PY" "benchmarks/$b.py" --device cuda --out "$REPORT" > /dev/null 2>&1 || echo "$b failed" >> "$REPORT"
done
"$PY" benchmarks/bench_generator.py --device cuda --repeats 3 --out "$REPORT" > /dev/null 2>&1 || echo "bench_generator failed" >> "$REPORT"
cat "$REPORT"
