#!/usr/bin/env bash
# `make bench-dextr3d`: DEXTR3D from each label's exact extreme points against the automatic
# segmentation model, case by case, on synthetic CT that neither model saw in training. Uses the
# models `make demo` trains (mmars/spleen_ct_seg and mmars/dextr3d, on synth seed 0); the unseen
# cases are synth seed 7. Both masks are on the input's own grid; Dice from `barton metrics`.
# Prints one JSON line per case and one with the means; they go to BUILD/bench-dextr3d.jsonl too.
set -euo pipefail
BUILD="$(cd "${1:-build}" && pwd)"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BARTON="$BUILD/barton"
AUTO="$ROOT/mmars/spleen_ct_seg"
DX="$ROOT/mmars/dextr3d"
CASES="${BENCH_CASES:-8}"
for m in "$AUTO" "$DX"; do
  if [ ! -f "$m/models/model.pt" ]; then
    echo "bench-dextr3d: $m/models/model.pt is missing: run make demo first" >&2
    exit 1
  fi
done
W="$BUILD/bench-dextr3d"
OUT="$BUILD/bench-dextr3d.jsonl"
rm -rf "$W"
mkdir -p "$W"
: > "$OUT"
"$BARTON" data synth "$W/unseen" --cases "$CASES" --seed 7 --lookalike-contrast 20 > /dev/null
dice() {  # dice PRED LABEL
  "$BARTON" metrics --pred "$1" --label "$2" --metrics dice | awk 'NR == 2 {print $2}'
}
# The automatic model as make demo serves it (96^3 windows on this CPU): its label map on each
# input's grid from AIAA /v1/segmentation.
. "$ROOT/scripts/serve-lib.sh"
start_serve "$BARTON" "$W/serve.log" --models "$AUTO" --set /inferer/args/roi_size=[96,96,96] amp=false \
  --work-dir "$W/serve" || exit 1
trap 'kill "$SERVER" 2> /dev/null || true' EXIT
sum_auto=0
sum_dx=0
for ((i = 0; i < CASES; i++)); do
  img="$W/unseen/imagesTr/case_$i.nii.gz"
  lab="$W/unseen/labelsTr/case_$i.nii.gz"
  curl -sf -o "$W/auto_$i.nii.gz" -F params={} -F "datapoint=@$img" \
    "http://127.0.0.1:$PORT/v1/segmentation?model=spleen_ct_seg&output=image"
  points=$("$BARTON" info "$lab" | sed -n 's/^extremes: *\(\[.*\]\)$/\1/p')
  "$BARTON" infer "$DX" --input "$img" --output "$W/dextr3d" \
    --clicks "{\"points\": $points}" > "$W/dextr3d.log" 2>&1
  a=$(dice "$W/auto_$i.nii.gz" "$lab")
  d=$(dice "$W/dextr3d/case_$i/case_${i}_clicks.nii.gz" "$lab")
  sum_auto=$(awk -v s="$sum_auto" -v x="$a" 'BEGIN {print s + x}')
  sum_dx=$(awk -v s="$sum_dx" -v x="$d" 'BEGIN {print s + x}')
  echo "{\"case\": \"case_$i\", \"automatic_dice\": $a, \"dextr3d_dice\": $d, \"points\": $points}" | tee -a "$OUT"
done
awk -v a="$sum_auto" -v d="$sum_dx" -v n="$CASES" \
  'BEGIN {printf "{\"cases\": %d, \"automatic_mean_dice\": %.4f, \"dextr3d_mean_dice\": %.4f}\n", n, a / n, d / n}' |
  tee -a "$OUT"
