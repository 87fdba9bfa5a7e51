#!/usr/bin/env bash
# Clara's validate_ckpt.sh: config/config_validation.json on models/model.pt; reports go to eval/.
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" validate "$MMAR_ROOT" -c config_validation.json -e environment.json ${1:+--set "$@"}
