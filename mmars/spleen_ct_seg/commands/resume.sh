#!/usr/bin/env bash
# Continues an interrupted training run from models/checkpoint_last.pt (same optimizer, schedule, epoch, best metric).
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" train "$MMAR_ROOT" -c config_train.json -e environment.json --resume ${1:+--set "$@"}
