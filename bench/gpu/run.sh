#!/usr/bin/env bash
# GPU check for the loss kernels, for a machine with an NVIDIA GPU, nvcc and python3 + torch.
# Builds a standalone harness (no Node needed) from the kernel sources, checks both CUDA kernels
# (block per row, and cluster per row on sm_90; fp32 and bf16) against the CPU kernel and the
# both against PyTorch (float64 autograd), then times forward-kl at
# N=8192 × V=128256 × k=64 against a device-to-device copy and against PyTorch eager.
# When Node and node_modules are present (node on PATH or .carry/node/bin/node), it also builds the
# addon's CUDA variant and runs test/losses/*.gpu.test.ts.
# Usage: bench/gpu/run.sh [N]      Output: $OUT (default .tmp/gpu) holds logs and results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-8192}
OUT=${OUT:-.tmp/gpu}
mkdir -p "$OUT/dump"
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
echo "== device: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) (sm_$ARCH), nvcc: $NVCC"

echo "== build harness"
"$NVCC" -std=c++17 -O3 -arch="sm_$ARCH" --use_fast_math -DDISTILLERY_WITH_CUDA=1 -Icuda \
  -Xcompiler -fopenmp,-march=native,-O3,-fno-math-errno \
  bench/gpu/harness.cu cuda/loss/cuda/*.cu cuda/common/cuda/device.cu \
  cuda/loss/cpu/loss_rows*.cpp cuda/loss/cpu/loss_common.cpp cuda/common/cpu/common.cpp -lgomp -o "$OUT/harness"

status=0
echo "== CUDA vs CPU kernel"
"$OUT/harness" check | tee "$OUT/check.txt" || status=1
echo "== CUDA vs PyTorch (float64 autograd)"
for kernel in rows cluster; do
  echo "-- kernel: $kernel"
  "$OUT/harness" dump "$OUT/dump" "$kernel" >/dev/null || status=1
  python3 bench/gpu/torch_check.py check "$OUT/dump" | tee "$OUT/torch_check_$kernel.md" || status=1
done
rm -rf "$OUT/dump"

echo "== timing"
"$OUT/harness" time "$N" | tee "$OUT/time.md" || status=1
OURS=$(sed -n 's/^TIME fp32_ms=\([0-9.]*\) bf16_ms=\([0-9.]*\).*/\1,\2/p' "$OUT/time.md")
python3 bench/gpu/torch_check.py time "$N" --ours "${OURS:-0,0}" | tee "$OUT/torch_time.md" || status=1

NODE=$(command -v node || true)
[ -z "$NODE" ] && [ -x .carry/node/bin/node ] && NODE=$PWD/.carry/node/bin/node
if [ -n "$NODE" ] && [ -d node_modules ]; then
  echo "== vitest GPU suite (node: $NODE)"
  PATH="$(dirname "$NODE"):$PATH"
  DISTILLERY_NATIVE_BUILD_DIR=cuda/build-gpu DISTILLERY_CUDA_ARCHS="$ARCH" node cuda/build.mjs
  npx tsc -p tsconfig.json
  DISTILLERY_NATIVE_DIR=cuda/build-gpu npx vitest run test/losses/cuda.gpu.test.ts | tee "$OUT/vitest.txt" || status=1
else
  echo "== vitest GPU suite skipped: no node + node_modules here (the harness above covers the kernels)"
fi

{
  echo "## losses (GPU) — $(date -u +%Y-%m-%d), bench/gpu/run.sh $N"
  echo; cat "$OUT/time.md"; echo; cat "$OUT/torch_time.md"; echo; grep -E '^(PASS|FAIL)' "$OUT/check.txt"; tail -qn1 "$OUT"/torch_check_*.md
} > "$OUT/results.md"
echo "== results in $OUT/results.md (status $status)"
exit $status
