#!/usr/bin/env bash
# `make bench-serve` (also part of `make bench`): the annotation server's targets of issue #17,
# measured over loopback: its overhead against `barton infer` on a CT-sized volume, and 50
# concurrent clients for a bounded count (failures, peak RSS against the budget, fds and threads
# before and after). Prints JSON lines; they go to BUILD/bench-serve.jsonl too.
set -euo pipefail
BUILD="$(cd "${1:-build}" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
THREADS="${BENCH_THREADS:-$(nproc)}"
W="$BUILD/bench-serve"
OUT="$BUILD/bench-serve.jsonl"
: > "$OUT"
mkdir -p "$W"
export BARTON_THREADS="$THREADS"
MMAR="$W/spleen"
if [ ! -f "$MMAR/models/model.pt" ]; then
  rm -rf "$MMAR"
  mkdir -p "$MMAR"
  cp -r "$ROOT/mmars/spleen_ct_seg/config" "$MMAR/"
  "$BUILD/barton" data synth "$MMAR/data" --cases 4 --size 96 96 40 --seed 1 > /dev/null
  # One short epoch: the weights' values do not change the time a forward pass takes.
  "$BUILD/barton" train "$MMAR" --set epochs=1 amp=false /train/pre_transforms/5/args/spatial_size=[32,32,32] \
    /validate/inferer/args/roi_size=[64,64,64] > "$W/train.log" 2>&1
fi
# A CT-sized volume (512x512x100 at 0.8x0.8x2.5 mm) and a small one for the load test.
[ -f "$W/ct/imagesTr/case_0.nii.gz" ] ||
  "$BUILD/barton" data synth "$W/ct" --cases 1 --size 512 512 100 --spacing 0.8 0.8 2.5 --seed 2 > /dev/null
[ -f "$W/small/imagesTr/case_0.nii.gz" ] ||
  "$BUILD/barton" data synth "$W/small" --cases 1 --size 96 96 40 --seed 3 > /dev/null

. "$ROOT/scripts/serve-lib.sh"
serve() {  # $1 = extra args; sets PID and PORT
  # shellcheck disable=SC2086
  start_serve "$BUILD/barton" "$W/serve.log" --models "$MMAR" --work-dir "$W/work" $1 || exit 1
  PID=$SERVER
}

echo "serve overhead: /v1/segmentation of a 512x512x100 CT against barton infer (whole process), $THREADS threads"
rm -rf "$W/infer-out"
/usr/bin/time -f '%e' -o "$W/infer.time" "$BUILD/barton" infer "$MMAR" --input "$W/ct/imagesTr/case_0.nii.gz" \
  --output "$W/infer-out" > "$W/infer.log" 2>&1
serve ""
/usr/bin/python3 "$ROOT/bench/serve/overhead.py" "$PORT" spleen "$W/ct/imagesTr/case_0.nii.gz" \
  "$(cat "$W/infer.time")" --repeats "${BENCH_REPEATS:-2}" | tee -a "$OUT"
kill "$PID"; wait "$PID" || true

BUDGET="${BENCH_SERVE_BUDGET_MB:-512}"
echo "serve load: 50 clients x 4 rounds (model list + session + segmentation, or model list + segmentation) on a 96x96x40 volume, --memory-budget-mb $BUDGET, --workers 2"
serve "--memory-budget-mb $BUDGET --workers 2 --queue 64 --http-threads 16"
/usr/bin/python3 "$ROOT/bench/serve/load.py" "$PORT" "$PID" spleen "$W/small/imagesTr/case_0.nii.gz" \
  --clients 50 --rounds "${BENCH_SERVE_ROUNDS:-4}" --workers 2 | tee -a "$OUT"
kill "$PID"; wait "$PID" || true
