#!/usr/bin/env bash
# Installs every package Barton needs to build, test and run its demo (Debian 12).
# Idempotent: when everything is present it does nothing and touches no network.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git strace xz-utils clang-format
  # the demo asks the annotation server for a segmentation with curl
  curl
  # clang with its sanitizer and libFuzzer runtimes (make sanitize, make fuzz)
  clang libclang-rt-14-dev
  # libraries (see docs/architecture.md)
  libtorch-dev libgloo-dev
  libnifti2-dev libdeflate-dev zlib1g-dev libjpeg-dev
  libinsighttoolkit5-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libssl-dev libcpp-httplib-dev
  # MMAR zip uploads to the annotation server (PUT /admin/model)
  libzip-dev
  libonnx-dev libprotobuf-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # test-only cross-checks, run as /usr/bin/python3
  python3 python3-torch python3-nibabel python3-pydicom python3-numpy
  # real images used by tests and the demo (docs/architecture.md)
  mricron-data insighttoolkit5-examples
  # ONNX Runtime for the export tests comes from npm (below)
  nodejs
  # the browser test of barton serve's viewer (Playwright drives it headless; the viewer's npm
  # packages are pinned in viewer/package-lock.json and installed below)
  chromium
)

# npm onnxruntime-node (its CPU binaries ship inside the package; --ignore-scripts skips the
# optional CUDA download), installed into .npm-deps/ of the checkout for the export tests.
ORT_VERSION=1.30.0
ORT_DIR="$(cd "$(dirname "$0")/.." && pwd)/.npm-deps"
install_ort() {
  if [ -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] &&
     grep -q "\"version\": \"$ORT_VERSION\"" "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    ${SUDO:-} apt-get install -y -qq --no-install-recommends npm  # Debian's nodejs ships npm apart
  fi
  echo "install-deps: npm install onnxruntime-node@$ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  npm install --prefix "$ORT_DIR" --ignore-scripts --no-audit --no-fund --no-save --loglevel=error "onnxruntime-node@$ORT_VERSION"
}

# The viewer's npm packages (NiiVue, esbuild, playwright-core) exactly as viewer/package-lock.json
# pins them, into viewer/node_modules; again only when the lock file changed.
VIEWER_DIR="$(cd "$(dirname "$0")/.." && pwd)/viewer"
install_viewer() {
  local stamp="$VIEWER_DIR/node_modules/.barton-lock.sha256"
  local want
  want=$(sha256sum "$VIEWER_DIR/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    ${SUDO:-} apt-get install -y -qq --no-install-recommends npm
  fi
  echo "install-deps: npm ci in $VIEWER_DIR"
  (cd "$VIEWER_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  install_ort
  install_viewer
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_ort
install_viewer
