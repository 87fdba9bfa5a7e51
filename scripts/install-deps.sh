#!/usr/bin/env bash
# Installs every package Barton needs to build, test and run its demo (Debian 12).
# Idempotent: when everything is present it does nothing and touches no network.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # libraries (see ../shared/ARCHITECTURE.md)
  libtorch-dev libgloo-dev
  libnifti2-dev libdeflate-dev zlib1g-dev
  libinsighttoolkit5-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # test-only cross-checks, run as /usr/bin/python3
  python3 python3-torch python3-nibabel python3-pydicom python3-numpy
  # real images used by tests and the demo (../shared/DATA.md)
  mricron-data insighttoolkit5-examples
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
