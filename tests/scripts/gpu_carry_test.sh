#!/usr/bin/env bash
# Scripts.GpuCarryListsWhatTheBuildReads: the carrying half of scripts/gpu-check.sh. The package list
# that scripts/gpu-carry.sh derives from a configured and built tree must hold every Debian package
# whose files the build opens (those a hand-written list once missed: ITK's IO modules load DCMTK,
# HDF5 and MINC configs; znz, expat and libjpeg are named by find_library and ITK's targets) and
# none of what the GPU machine brings (LibTorch, the C library).
# usage: gpu_carry_test.sh BUILD_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
list="$(bash "$ROOT/scripts/gpu-carry.sh" --list "$1")"
echo "derived $(wc -l <<< "$list") packages"
fail=0
for p in libonnx-dev libprotobuf-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libcli11-dev libnifti2-dev \
         libznz-dev libdeflate-dev libinsighttoolkit5-dev libdcmtk-dev libhdf5-dev libminc-dev libexpat1-dev \
         libjpeg62-turbo-dev libgtest-dev libssl-dev; do
  grep -qx "$p" <<< "$list" || { echo "missing: $p"; fail=1; }
done
for p in libtorch-dev libtorch1.13 libc6-dev; do
  if grep -qx "$p" <<< "$list"; then echo "carried but the GPU machine has its own: $p"; fail=1; fi
done
exit "$fail"
