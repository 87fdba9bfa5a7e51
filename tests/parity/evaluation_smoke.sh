#!/usr/bin/env bash
# Parity.EvaluationMatchesTheMonaiTwinLoop: Barton and the MONAI twin loop of bench/parity validate
# the same trained weights (learning rate 0, instance norm: nothing can move them) on three small
# synthetic cases; their validation Dice must agree at every epoch.
# usage: evaluation_smoke.sh BARTON WORK_DIR
set -euo pipefail
BARTON="$1"
WORK="$2"
HERE="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$WORK"
COMMON=(--barton "$BARTON" --config unet_bn --seeds 1 --cases 3 --val 1
        --synth-arg=--size=48,48,24 --synth-arg=--spacing=2,2,4)
# 1. Weights worth comparing: a few epochs of real training (both sides, from the same start).
/usr/bin/python3 "$HERE/bench/parity/parity.py" "${COMMON[@]}" --work "$WORK/train" \
  --set epochs=6 learning_rate=0.01 /train/model/args/norm=instance
# 2. Both validate Barton's trained weights, which cannot change.
mkdir -p "$WORK/eval"
ln -s "$WORK/train/data" "$WORK/eval/data"
/usr/bin/python3 "$HERE/bench/parity/parity.py" "${COMMON[@]}" --work "$WORK/eval" \
  --init "$WORK/train/unet_bn/seed_1/barton/models/checkpoint_last.pt" \
  --set epochs=2 learning_rate=0 /train/model/args/norm=instance --expect-same-curves 0.002
