#!/usr/bin/env bash
# Clara's infer.sh: config/config_inference.json; segmentations on each image's own grid go to eval/.
# Usage: infer.sh [IMAGE_OR_DATALIST]
set -euo pipefail
source "$(dirname "$0")/set_env.sh"
"$BARTON" infer "$MMAR_ROOT" -c config_inference.json -e environment.json ${1:+--input "$1"}
