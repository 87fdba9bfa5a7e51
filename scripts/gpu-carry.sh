#!/usr/bin/env bash
# Packs what a CUDA build of Barton needs from Debian, for a GPU machine that has LibTorch, CUDA and
# a compiler but no Debian packages and no network (scripts/gpu-check.sh unpacks it there).
#
# usage: scripts/gpu-carry.sh [--list] [BUILD_DIR] [OUT]
#   BUILD_DIR  a configured and built Debian build (default build/; `make` makes it)
#   OUT        default .gpu-carry.tar.xz; the unpacked packages go to OUT's folder/.gpu-prefix
#   --list     print the derived package list and stop (no download)
#
# The package list is derived from what the build really reads, not written by hand:
#   - every file CMake opens while configuring the project (strace of a fresh configure: package
#     configs such as ITK's, which load DCMTK's, HDF5's and MINC's),
#   - every header the compiler read (ninja's dependency log of BUILD_DIR),
#   - every library on the link lines of the build (ninja's commands) and what those load (ldd),
#   - every library that those CMake files name by absolute path,
# each mapped to its Debian package (dpkg's file lists), less what the GPU machine brings itself:
# LibTorch and Python's torch, the C/C++ toolchain and C library, CUDA.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LIST_ONLY=0
if [ "${1:-}" = "--list" ]; then LIST_ONLY=1; shift; fi
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
OUT="${2:-$ROOT/.gpu-carry.tar.xz}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

[ -f "$BUILD/build.ninja" ] || { echo "gpu-carry: $BUILD is not a configured build (run make first)" >&2; exit 1; }
command -v strace >/dev/null || { echo "gpu-carry: needs strace (apt-get install strace)" >&2; exit 1; }

# 1. Files CMake opens in a fresh configure of the same project.
strace -f -qq -e trace=openat,open -o "$WORK/cmake.trace" \
  cmake -S "$ROOT" -B "$WORK/configure" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$WORK/configure.log" 2>&1 ||
  { tail -20 "$WORK/configure.log" >&2; echo "gpu-carry: configure failed" >&2; exit 1; }
grep -v ENOENT "$WORK/cmake.trace" | grep -o '"/usr/[^"]*"' | tr -d '"' | sort -u > "$WORK/opened"

# 2. Headers the compiler read.
ninja -C "$BUILD" -t deps | grep -o '^ *\(/usr/[^ ]*\)' | tr -d ' ' | sort -u > "$WORK/headers"

# 3. Libraries on the link lines.
ninja -C "$BUILD" -t commands | grep -o '/usr/[^ ]*\.\(so[.0-9]*\|a\)' | sort -u > "$WORK/links" || true

# Files to Debian packages with dpkg's own file lists. Also: the libraries that the CMake files read
# name by absolute path (ITK's module files name libexpat.so, libjpeg.so, ...), and what the linked
# libraries load (ldd), for every library that is not the GPU machine's own.
python3 - "$WORK" > "$WORK/packages" <<'PY'
import glob, os, re, subprocess, sys
work = sys.argv[1]
owner = {}
for lst in glob.glob("/var/lib/dpkg/info/*.list"):
    pkg = os.path.basename(lst)[:-5].split(":")[0]
    with open(lst, errors="replace") as f:
        for line in f:
            owner.setdefault(line.rstrip("\n"), pkg)
skip = ("libtorch", "python3-torch", "libc6", "libc-dev", "libstdc++", "libgcc", "gcc", "g++", "cpp",
        "linux-libc-dev", "libcuda", "nvidia", "cuda", "libnvidia", "libcudnn", "libnccl", "cmake", "ninja-build")

def package(path):
    for p in (path, os.path.realpath(path)):
        for q in (p, p[4:] if p.startswith("/usr/lib") else None):  # merged /usr: dpkg may list /lib/...
            if q and q in owner:
                return owner[q]
    return None

def read(name):
    return open(os.path.join(work, name)).read().split()

found, libs = set(), set()
# what CMake opens besides package configs and headers (its own modules' probes of /usr/share,
# locale files, ...) says nothing about the build
opened = [p for p in read("opened") if p.endswith(".cmake") or p.startswith(("/usr/include/", "/usr/lib/"))]
for path in opened + read("headers") + read("links"):
    pkg = package(path)
    if pkg and not pkg.startswith(skip):
        found.add(pkg)
        if re.search(r"\.so[.0-9]*$", path):
            libs.add(path)
for path in opened:
    if path.endswith(".cmake") and os.path.isfile(path):
        for lib in re.findall(r"(/usr/lib/[^\s\";]+\.(?:so|a))\b", open(path, errors="replace").read()):
            pkg = package(lib) if os.path.exists(lib) else None
            if pkg and not pkg.startswith(skip):
                found.add(pkg)
for lib in sorted(libs):
    out = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    for dep in re.findall(r"=> (/\S+)", out):
        pkg = package(dep)
        if pkg and not pkg.startswith(skip):
            found.add(pkg)
print("\n".join(sorted(found)))
PY

if [ "$LIST_ONLY" = 1 ]; then
  cat "$WORK/packages"
  exit 0
fi
mapfile -t PKGS < "$WORK/packages"
PREFIX="$(dirname "$OUT")/.gpu-prefix"
rm -rf "$PREFIX"
mkdir -p "$PREFIX/debs"
(cd "$PREFIX/debs" && apt-get download "${PKGS[@]}" > /dev/null)
for d in "$PREFIX"/debs/*.deb; do dpkg-deb -x "$d" "$PREFIX"; done
cp "$WORK/packages" "$PREFIX/packages.txt"
rm -rf "$PREFIX/debs" "$PREFIX/usr/share/doc" "$PREFIX/usr/share/man"
tar -cJf "$OUT" -C "$(dirname "$PREFIX")" "$(basename "$PREFIX")"
echo "gpu-carry: ${#PKGS[@]} packages, $(du -sh "$PREFIX" | cut -f1) unpacked, $(du -h "$OUT" | cut -f1) as $OUT"
