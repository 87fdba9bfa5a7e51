#!/usr/bin/env bash
# Clara's train.sh: trains with config/config_train.json. Extra arguments go through as --set KEY=VALUE.
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" train "$MMAR_ROOT" -c config_train.json -e environment.json ${1:+--set "$@"}
