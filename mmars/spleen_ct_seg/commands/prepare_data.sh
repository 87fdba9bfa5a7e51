#!/usr/bin/env bash
# Writes the synthetic CT datalist into $MMAR_ROOT/data (DATA_ROOT in config/environment.json).
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" data synth "$MMAR_ROOT/data" --cases "${CASES:-10}" --seed "${SEED:-0}" "$@"
