#!/usr/bin/env bash
# Reports every problem of the training config at once (unknown names, bad types, missing files).
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" config check "$MMAR_ROOT" -c "${1:-config_train.json}"
