#!/usr/bin/env bash
# Prints the resolved training config (Clara's print_conf). Extra arguments: --set KEY=VALUE ...
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" config show "$MMAR_ROOT" -c config_train.json "$@"
