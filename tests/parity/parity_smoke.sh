#!/usr/bin/env bash
# Parity.TrainingAndEvaluationMatchTheMonaiTwinLoop: the side-by-side harness of bench/parity on three
# small synthetic cases (two train, one validates).
# 1. Training: the twin loop trains on the patches Barton drew (--replay) from the same initial
#    weights; the training losses of the first iterations must agree (forward pass, DiceLoss,
#    backward pass and Adam step computed alike).
# 2. Evaluation: both validate Barton's trained weights with learning rate 0 and instance norm, so
#    that nothing can move them; the validation Dice must agree at every epoch.
# usage: parity_smoke.sh BARTON WORK_DIR
set -euo pipefail
BARTON="$1"
WORK="$2"
HERE="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$WORK"
COMMON=(--barton "$BARTON" --config unet_bn --seeds 1 --cases 3 --val 1 --threads 2
        --synth-arg=--size=48,48,24 --synth-arg=--spacing=2,2,4)
/usr/bin/python3 "$HERE/bench/parity/parity.py" "${COMMON[@]}" --work "$WORK/train" --replay \
  --set epochs=6 learning_rate=0.01 /train/model/args/norm=instance --expect-same-losses 4 0.002
mkdir -p "$WORK/eval"
ln -s "$WORK/train/data" "$WORK/eval/data"
/usr/bin/python3 "$HERE/bench/parity/parity.py" "${COMMON[@]}" --work "$WORK/eval" \
  --init "$WORK/train/unet_bn-replay/seed_1/barton/models/checkpoint_last.pt" \
  --set epochs=2 learning_rate=0 /train/model/args/norm=instance --expect-same-curves 0.002
