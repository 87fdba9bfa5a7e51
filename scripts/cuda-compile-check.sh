#!/usr/bin/env bash
# Compiles Barton's CUDA build against LibTorch 2.x headers on a machine without a GPU or those
# libraries: the check that keeps BARTON_WITH_CUDA=ON compiling between GPU sessions.
#
# usage: scripts/cuda-compile-check.sh [HEADERS_TAR] [BUILD_DIR] [all|ci]
#   HEADERS_TAR  a tar.xz of a LibTorch distribution's include/ and share/cmake/ (default: the
#                project's toolchain copy, $BARTON_TORCH_HEADERS or ../shared/toolchains/
#                libtorch-2.11.0-cu130-headers.tar.xz)
#   BUILD_DIR    default build-cuda
#   ci           (default) the objects that differ between LibTorch 1.13 and 2.x or CPU and CUDA:
#                logging (fmt/spdlog), the ONNX writer (protobuf), c10d with NCCL, autocast, the
#                trainer, the run library (CUDA devices), the CPU allocator, the GPU monitor, the
#                layers (oneDNN calls); `all`
#                compiles every object.
# Needs the CUDA toolkit at /usr/local/cuda (nvcc; no GPU). Links nothing: the libraries that the
# torch CMake config names are empty stubs. Prints "skipped (reason)" and exits 0 when the headers
# or the toolkit are absent.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TAR="${1:-${BARTON_TORCH_HEADERS:-$ROOT/../shared/toolchains/libtorch-2.11.0-cu130-headers.tar.xz}}"
BUILD="${2:-$ROOT/build-cuda}"
WHAT="${3:-ci}"
CUDA="${CUDA_HOME:-/usr/local/cuda}"

if [ ! -f "$TAR" ]; then
  echo "cuda-compile-check: skipped (no LibTorch 2.x headers at $TAR; set BARTON_TORCH_HEADERS)"
  exit 0
fi
if [ ! -x "$CUDA/bin/nvcc" ]; then
  echo "cuda-compile-check: skipped (no CUDA toolkit at $CUDA)"
  exit 0
fi

# LibTorch's CMake config finds CUDA through the old FindCUDA module, which looks for nvcc on PATH
# and in CUDA_PATH, not at CMAKE_CUDA_COMPILER: a CI shell has neither.
export CUDA_HOME="$CUDA" CUDA_PATH="$CUDA" PATH="$CUDA/bin:$PATH"

TORCH="$BUILD/libtorch"
STAMP="$TORCH/.unpacked-$(sha256sum "$TAR" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  rm -rf "$TORCH"
  mkdir -p "$TORCH"
  tar -xJf "$TAR" -C "$TORCH"
  # Empty shared objects for every library the CMake config checks for: enough to configure and
  # compile, nothing can link against them.
  mkdir -p "$TORCH/lib"
  libs=$(grep -oh 'lib[A-Za-z0-9_]*\.so' "$TORCH"/share/cmake/Caffe2/Caffe2Targets-release.cmake | sort -u)
  for l in $libs libtorch_global_deps.so libshm.so libcaffe2_nvrtc.so; do
    [ -f "$TORCH/lib/$l" ] || cc -shared -o "$TORCH/lib/$l" -x c /dev/null
  done
  touch "$STAMP"
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBARTON_WITH_CUDA=ON -DBARTON_BUILD_TESTS=OFF -DBARTON_USE_PCH=OFF \
    -DTorch_DIR="$TORCH/share/cmake/Torch" -DCaffe2_DIR="$TORCH/share/cmake/Caffe2" -DCMAKE_PREFIX_PATH="$TORCH" \
    -DTORCH_CUDA_ARCH_LIST=9.0 \
    -DCUDAToolkit_ROOT="$CUDA" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA" -DCMAKE_CUDA_COMPILER="$CUDA/bin/nvcc" \
    $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache) > "$BUILD/configure.log" 2>&1 ||
    { tail -40 "$BUILD/configure.log"; echo "cuda-compile-check: FAILED to configure (log $BUILD/configure.log)"; exit 1; }
fi

objects() {
  ninja -C "$BUILD" -t targets all | grep -o '^[^:]*\.cpp\.o' | sort -u
}
if [ "$WHAT" = all ]; then
  mapfile -t OBJS < <(objects | grep -v '^bench/\|^tests/')
else
  mapfile -t OBJS < <(objects | grep -E '/(core/logging|core/cpu_allocator|export/onnx|engine/distributed|engine/autocast|engine/trainer|engine/monitor|mmar/run|nets/blocks/layers)\.cpp\.o$')
fi
if [ ${#OBJS[@]} -eq 0 ]; then
  echo "cuda-compile-check: FAILED (no objects to compile in $BUILD)"
  exit 1
fi
echo "cuda-compile-check: compiling ${#OBJS[@]} object(s) against $(basename "$TAR") with CUDA $("$CUDA/bin/nvcc" --version | grep -o 'release [0-9.]*')"
start=$(date +%s)
if ninja -C "$BUILD" -j "${JOBS:-$(nproc)}" "${OBJS[@]}"; then
  echo "cuda-compile-check: passed (${#OBJS[@]} objects in $(( $(date +%s) - start )) s)"
else
  echo "cuda-compile-check: FAILED"
  exit 1
fi
