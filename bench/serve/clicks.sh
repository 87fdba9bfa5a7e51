#!/usr/bin/env bash
# `make bench-clicks`: per-click latency of the sample DeepGrow models through `barton serve` with a
# session, on a CT-sized volume (512x512x100 at 0.8x0.8x2.5 mm), stage split from the server's own
# timings; beside it the same click through `barton infer --clicks` (whole process). DeepGrow 3D
# (mmars/deepgrow_3d: clicks cropped to 128^3 at 1 mm, the network at 64^3), DeepGrow 2D
# (mmars/deepgrow_2d: the clicked slice cropped to 128^2 at 1 mm in-plane, the network at 96^2), and
# the 2D + 3D pipeline (mmars/deepgrow_pipeline: the 3-D mask redrawn slice by slice). Prints JSON
# lines; they go to BUILD/bench-clicks.jsonl too.
set -euo pipefail
BUILD="$(cd "${1:-build}" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
THREADS="${BENCH_THREADS:-$(nproc)}"
W="$BUILD/bench-clicks"
OUT="$BUILD/bench-clicks.jsonl"
: > "$OUT"
mkdir -p "$W"
export BARTON_THREADS="$THREADS"
# Two short epochs each: the weights' values do not change the time a forward pass takes.
train_small() {
  local name="$1" mmar="$W/$1"
  [ -f "$mmar/models/model.pt" ] && return
  rm -rf "$mmar"
  mkdir -p "$mmar"
  cp -r "$ROOT/mmars/$name/config" "$mmar/"
  "$BUILD/barton" data synth "$mmar/data" --cases 4 --seed 1 > /dev/null
  if [ "$name" = deepgrow_2d ]; then
    "$BUILD/barton" data deepgrow --dataset_json "$mmar/data/dataset.json" \
      --datalist_key training,validation --output "$mmar/data/slices" > /dev/null
  fi
  "$BUILD/barton" train "$mmar" --set epochs=2 num_interval_per_valid=2 > "$W/train-$name.log" 2>&1
}
train_small deepgrow_3d
train_small deepgrow_2d
rm -rf "$W/deepgrow_pipeline"
cp -r "$ROOT/mmars/deepgrow_pipeline" "$W/"
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
. "$ROOT/scripts/serve-lib.sh"
for MODEL in ${BENCH_CLICK_MODELS:-deepgrow_3d deepgrow_2d deepgrow_pipeline}; do
  INFER_S=0
  if [ "$MODEL" != deepgrow_pipeline ]; then  # barton infer runs one model
    rm -rf "$W/infer-out"
    /usr/bin/time -f '%e' -o "$W/infer.time" "$BUILD/barton" infer "$W/$MODEL" --input "$CT" \
      --output "$W/infer-out" --clicks "$CLICK" > "$W/infer.log" 2>&1
    cat "$W/infer.log"
    INFER_S="$(cat "$W/infer.time")"
  fi
  start_serve "$BUILD/barton" "$W/serve.log" --models "$W/deepgrow_3d" "$W/deepgrow_2d" \
    "$W/deepgrow_pipeline" --work-dir "$W/work"
  trap 'kill "$SERVER" 2> /dev/null || true' EXIT
  /usr/bin/python3 "$ROOT/bench/serve/clicks.py" "$PORT" "$MODEL" "$CT" "$I" "$J" "$K" \
    --clicks "${BENCH_CLICKS:-10}" --infer-s "$INFER_S" | tee -a "$OUT"
  kill "$SERVER"; wait "$SERVER" 2> /dev/null || true
done
