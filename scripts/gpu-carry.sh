#!/usr/bin/env bash
# Run on a Debian 12 machine with apt (not on the GPU machine): downloads the .deb files of
# Barton's dependencies other than LibTorch and unpacks them into a prefix folder that
# scripts/gpu-check.sh uses on a machine without internet. Only headers and libraries; no install.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${1:-$ROOT/.gpu-prefix}"
PKGS=(nlohmann-json3-dev libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libnifti2-dev libnifti2-2
      libdeflate-dev libdeflate0 libgtest-dev libgmock-dev libonnx-dev libonnx1 libprotobuf-dev libprotobuf32
      libinsighttoolkit5-dev libinsighttoolkit5.2 libgdcm-dev libgdcm3.0 libgloo-dev libgloo0)
mkdir -p "$PREFIX/debs"
(cd "$PREFIX/debs" && apt-get download "${PKGS[@]}")
for d in "$PREFIX"/debs/*.deb; do dpkg-deb -x "$d" "$PREFIX"; done
du -sh "$PREFIX"
