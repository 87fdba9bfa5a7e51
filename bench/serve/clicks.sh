#!/usr/bin/env bash
# `make bench-clicks`: per-click latency of the sample DeepGrow 3D model (mmars/deepgrow_3d: clicks
# cropped to 128^3 at 1 mm, the network at 64^3) through `barton serve` with a session, on a
# CT-sized volume (512x512x100 at 0.8x0.8x2.5 mm), stage split from the server's own timings;
# beside it the same click through `barton infer --clicks` (whole process). Prints JSON lines;
# they go to BUILD/bench-clicks.jsonl too.
set -euo pipefail
BUILD="$(cd "${1:-build}" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
THREADS="${BENCH_THREADS:-$(nproc)}"
W="$BUILD/bench-clicks"
OUT="$BUILD/bench-clicks.jsonl"
: > "$OUT"
mkdir -p "$W"
export BARTON_THREADS="$THREADS"
MMAR="$W/deepgrow_3d"
if [ ! -f "$MMAR/models/model.pt" ]; then
  rm -rf "$MMAR"
  mkdir -p "$MMAR"
  cp -r "$ROOT/mmars/deepgrow_3d/config" "$MMAR/"
  "$BUILD/barton" data synth "$MMAR/data" --cases 4 --seed 1 > /dev/null
  # Two short epochs: the weights' values do not change the time a forward pass takes.
  "$BUILD/barton" train "$MMAR" --set epochs=2 num_interval_per_valid=2 > "$W/train.log" 2>&1
fi
CT="$W/ct/imagesTr/case_0.nii.gz"
[ -f "$CT" ] ||
  "$BUILD/barton" data synth "$W/ct" --cases 1 --size 512 512 100 --spacing 0.8 0.8 2.5 --seed 2 > /dev/null
# A click inside the organ: the label's centre of mass.
read -r I J K < <(/usr/bin/python3 - "$W/ct/labelsTr/case_0.nii.gz" <<'PY'
import gzip, struct, sys
import numpy as np
b = gzip.open(sys.argv[1]).read()
dims = struct.unpack("<8h", b[40:56]); off = int(struct.unpack("<f", b[108:112])[0])
n = dims[1] * dims[2] * dims[3]
a = np.frombuffer(b[off:off + n], dtype=np.uint8).reshape(dims[3], dims[2], dims[1]).T
print(*np.argwhere(a > 0).mean(0).round().astype(int))
PY
)
echo "click at [$I, $J, $K] of a 512x512x100 CT, $THREADS threads"
CLICK="{\"foreground\": [[$I, $J, $K]]}"
rm -rf "$W/infer-out"
/usr/bin/time -f '%e' -o "$W/infer.time" "$BUILD/barton" infer "$MMAR" --input "$CT" --output "$W/infer-out" \
  --clicks "$CLICK" > "$W/infer.log" 2>&1
cat "$W/infer.log"
. "$ROOT/scripts/serve-lib.sh"
start_serve "$BUILD/barton" "$W/serve.log" --models "$MMAR" --work-dir "$W/work"
trap 'kill "$SERVER" 2> /dev/null || true' EXIT
/usr/bin/python3 "$ROOT/bench/serve/clicks.py" "$PORT" deepgrow_3d "$CT" "$I" "$J" "$K" \
  --clicks "${BENCH_CLICKS:-10}" --infer-s "$(cat "$W/infer.time")" | tee -a "$OUT"
kill "$SERVER"; wait "$SERVER" 2> /dev/null || true
