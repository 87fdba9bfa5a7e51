#!/usr/bin/env bash
# Clara's finetune.sh: the training config with the checkpoint loader enabled (MMAR_CKPT, models/model.pt).
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" finetune "$MMAR_ROOT" -c config_train.json -e environment.json ${1:+--set "$@"}
