#!/usr/bin/env bash
# GPU check: builds Barton against a CUDA LibTorch on a machine without internet, runs the GPU
# tests and the model benchmark on the GPU, and prints the figures (issue #6; docs/performance.md).
#
#   scripts/gpu-carry.sh            # on a Debian 12 machine with apt, after `make`: the Debian
#                                   # packages the build reads, derived from it, as .gpu-carry.tar.xz
#   scripts/gpu-check.sh [PREFIX]   # on the GPU machine; PREFIX defaults to .gpu-prefix, unpacked
#                                   # from .gpu-carry.tar.xz when only the archive came along
#
# LibTorch: $LIBTORCH, else /opt/libtorch, /usr/local/libtorch, or the torch package of python3.
# Needs cmake and a C++20 compiler; ninja when present. Nothing is downloaded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="$(cd "${1:-$ROOT/.gpu-prefix}" 2>/dev/null && pwd || echo "${1:-$ROOT/.gpu-prefix}")"
BUILD="${BUILD:-$ROOT/build-gpu}"
if [ ! -d "$PREFIX/usr" ] && [ -f "$ROOT/.gpu-carry.tar.xz" ]; then
  tar -xJf "$ROOT/.gpu-carry.tar.xz" -C "$ROOT"
  PREFIX="$ROOT/.gpu-prefix"
fi

torch_dir=""
for c in "${LIBTORCH:-}" /opt/libtorch /usr/local/libtorch \
         "$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null || true)"; do
  if [ -n "$c" ] && [ -f "$c/share/cmake/Torch/TorchConfig.cmake" ]; then torch_dir="$c"; break; fi
done
if [ -z "$torch_dir" ]; then
  echo "gpu-check: no LibTorch found (set LIBTORCH to a folder with share/cmake/Torch/TorchConfig.cmake)" >&2
  exit 1
fi
echo "== GPU and LibTorch"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "(no nvidia-smi)"
echo "LibTorch: $torch_dir"

PREFIX_PATHS="$torch_dir"
if [ -d "$PREFIX/usr" ]; then
  PREFIX_PATHS="$PREFIX_PATHS;$PREFIX/usr;$PREFIX/usr/lib/x86_64-linux-gnu/cmake"
  export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  export CPATH="$PREFIX/usr/include:${CPATH:-}"
fi
GEN=()
if command -v ninja >/dev/null; then GEN=(-G Ninja); fi

echo "== Build ($BUILD)"
# The annotation server stays out of the GPU build unless asked for (BARTON_WITH_SERVE=ON): the
# carry (gpu-carry.sh) is derived from a build and has not yet been checked to hold cpp-httplib.
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DBARTON_WITH_CUDA=ON -DBARTON_BUILD_BENCH=ON \
  -DBARTON_WITH_SERVE="${BARTON_WITH_SERVE:-OFF}" \
  -DCMAKE_PREFIX_PATH="$PREFIX_PATHS" > "$BUILD.configure.log" 2>&1 || { tail -30 "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" 2>&1 | tail -3

echo "== GPU tests"
(cd "$BUILD" && ctest -L gpu --output-on-failure --timeout 600) || echo "gpu-check: GPU tests FAILED"

echo "== Model benchmark (spleen UNet: training step at 64^3 and 96^3, sliding window), GPU vs this machine's CPU"
for SIZE in 64 96; do
  "$BUILD/bench/model_bench" --device cuda --size "$SIZE" --batch 2 --steps 10 --sw "${BENCH_SW:-512,512,96}" --sw-repeats 3
done
"$BUILD/bench/model_bench" --device cpu --size 64 --batch 2 --steps 3 --threads "$(nproc)" --sw 192,192,96 --sw-repeats 1
/usr/bin/env python3 "$ROOT/bench/model_bench.py" --size 64 --batch 2 --steps 3 --threads "$(nproc)" --sw 192,192,96 --sw-repeats 1 2>/dev/null \
  || echo "(python3 with torch not available: no Python side)"

echo "== Data-parallel scaling on the GPUs (NCCL)"
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l || echo 0)
if [ "$NGPU" -ge 2 ]; then
  DATA="$BUILD/gpu-data"
  [ -f "$DATA/dataset.json" ] || "$BUILD/barton" data synth "$DATA" --cases 9 --seed 1 > /dev/null
  for N in 1 2; do
    /usr/bin/time -f "ranks $N: %e s" "$BUILD/barton" train "$ROOT/mmars/spleen_ct_seg" --nproc "$N" --set \
      DATASET_JSON="$DATA/dataset.json" DATA_ROOT="$DATA" MMAR_CKPT_DIR="$BUILD/gpu-train-$N" epochs=2 \
      num_interval_per_valid=1000 > "$BUILD/gpu-train-$N.log" 2>&1 || tail -5 "$BUILD/gpu-train-$N.log"
    grep -h "all-reduce" "$BUILD/gpu-train-$N.log" || true
  done
else
  echo "(one GPU: no scaling figures)"
fi
