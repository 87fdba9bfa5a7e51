#!/usr/bin/env bash
# Writes the brain-mask datalist into $MMAR_ROOT/data: real T1 MRIs from Debian's mricron-data and
# insighttoolkit5-examples, masks from their skull-stripped copies.
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" data sample brain "$MMAR_ROOT/data"
