#!/usr/bin/env bash
# Sourced by the other scripts: MMAR_ROOT is this MMAR, BARTON the binary (override with $BARTON).
export MMAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BARTON="${BARTON:-$(cd "$MMAR_ROOT/../.." && pwd)/build/barton}"
export BARTON
