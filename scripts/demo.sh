#!/usr/bin/env bash
# `make demo`: the main job on the bundled sample data, end to end: synthesise CT, check the Clara
# spleen MMAR, train it on CPU, validate the best checkpoint, segment one volume.
set -euo pipefail
BARTON="${1:-build/barton}"
cd "$(dirname "$0")/.."
OUT=demo-out
MMAR=mmars/spleen_ct_seg
DG=mmars/deepgrow_3d
DX=mmars/dextr3d
rm -rf "$OUT" "$MMAR/models"/*.pt "$MMAR/models"/events.out.tfevents.* "$MMAR/models"/*.json "$MMAR/eval"/*
rm -rf "$DG/models"/*.pt "$DG/models"/*.json "$DG/eval"/*
rm -rf "$DX/models"/*.pt "$DX/models"/*.json "$DX/eval"/*
mkdir -p "$OUT"
step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "Synthesise CT-like volumes with labels into the sample MMAR's DATA_ROOT" \
  "$BARTON" data synth "$MMAR/data" --cases 10 --seed 0 --lookalike-contrast 20
step "Inspect one case (LPS orientation, anisotropic spacing, Hounsfield units)" \
  "$BARTON" info "$MMAR/data/imagesTr/case_0.nii.gz"
step "Check the Clara 4.1 spleen config: names, argument types, references, datalist files" \
  "$BARTON" config check "$MMAR"
# The config (Clara's spleen components and values), with run-time overrides sized for a 2-core CPU and for the synthetic
# volumes (a look-alike organ 20 HU darker, not 10; about 120x100x150 voxels after CropForegroundd, smaller than the config's 160^3 window,
# which real 512x512 CTs are not): 64^3 patches, 2 per case, DiceCE, a higher learning rate,
# 96^3 validation windows.
FAST=(epochs=60 num_interval_per_valid=10 learning_rate=3e-3 /train/loss/name=DiceCELoss
      /train/pre_transforms/5/args/spatial_size=[64,64,64] /train/pre_transforms/5/args/num_samples=2
      /validate/inferer/args/roi_size=[96,96,96])
step "Train on CPU (the config's handlers: validation every 10 epochs, best checkpoint, TensorBoard)" \
  env BARTON_LOG_EVERY=4 "$BARTON" train "$MMAR" --set "${FAST[@]}"
step "Validate the best checkpoint with config_validation.json (prediction inverted to each image's grid)" \
  "$BARTON" validate "$MMAR" --set /inferer/args/roi_size=[96,96,96]
step "Segment one volume with config_inference.json" \
  "$BARTON" infer "$MMAR" --input "$MMAR/data/imagesTr/case_9.nii.gz" --output "$OUT/infer" \
  --set /inferer/args/roi_size=[96,96,96] amp=false
step "The segmentation is on the input's grid" \
  "$BARTON" info "$OUT/infer/case_9/case_9_trans.nii.gz"
step "Export the best checkpoint: ONNX, a Triton model repository, Barton's inference plan, a manifest" \
  "$BARTON" export "$MMAR" --input-shape 1,1,96,96,96
step "Check every exported file against the manifest's SHA-256" \
  "$BARTON" verify "$MMAR/models/export"
step "Segment the same volume from the plan alone (no MMAR, no network code)" \
  "$BARTON" infer --model "$MMAR/models/export/model.plan" --input "$MMAR/data/imagesTr/case_9.nii.gz" \
  --output "$OUT/infer-plan" --set /inferer/args/roi_size=[96,96,96] amp=false
step "The plan's segmentation is the checkpoint's, byte for byte" \
  cmp "$OUT/infer-plan/case_9/case_9_trans.nii.gz" "$OUT/infer/case_9/case_9_trans.nii.gz"
echo "identical"

# The interactive sample: DeepGrow 3D trained briefly with simulated clicks, on the same synthetic CT.
step "Synthesise the same CT for the DeepGrow 3D sample MMAR" \
  "$BARTON" data synth "$DG/data" --cases 10 --seed 0 --lookalike-contrast 20
step "Train DeepGrow 3D with simulated clicks (ClickInteraction: before each iteration, 5 rounds of predict, find where it is wrong, click there)" \
  env BARTON_LOG_EVERY=4 "$BARTON" train "$DG" --set epochs=60 num_interval_per_valid=20
# The annotation sample: DEXTR3D, six extreme points -> a mask, on the same synthetic CT.
step "Synthesise the same CT for the DEXTR3D sample MMAR" \
  "$BARTON" data synth "$DX/data" --cases 10 --seed 0 --lookalike-contrast 20
step "Train DEXTR3D (the label's six extreme points as a Gaussian channel, AddExtremePointsChanneld)" \
  env BARTON_LOG_EVERY=4 "$BARTON" train "$DX" --set num_interval_per_valid=10

# The annotation server: AIAA requests, as NVIDIA's clients send them.
. scripts/serve-lib.sh
serve_mmar() {  # serve_mmar MMAR LOG [ARGS...]: start_serve with the demo's work dir
  local mmar="$1" log="$2"
  shift 2
  start_serve "$BARTON" "$log" --models "$mmar" "$@" --work-dir "$OUT/serve" || exit 1
}
trap 'kill "$SERVER" 2> /dev/null || true' EXIT
serve_mmar "$MMAR" "$OUT/serve.log" --set /inferer/args/roi_size=[96,96,96] amp=false
step "Serve the MMAR (barton serve --models $MMAR, the same --set as infer): the AIAA model list" \
  curl -s "http://127.0.0.1:$PORT/v1/models"
echo
step "Segment case_9 through the server (AIAA /v1/segmentation, the image uploaded as 'datapoint')" \
  curl -s -o "$OUT/served.nii.gz" -w '%{http_code} %{size_download} bytes in %{time_total} s\n' \
  -F params={} -F "datapoint=@$MMAR/data/imagesTr/case_9.nii.gz" \
  "http://127.0.0.1:$PORT/v1/segmentation?model=spleen_ct_seg&output=image"
step "Dice of the served segmentation against case_9's reference label" \
  "$BARTON" metrics --pred "$OUT/served.nii.gz" --label "$MMAR/data/labelsTr/case_9.nii.gz" --metrics dice
kill "$SERVER"
wait "$SERVER" 2> /dev/null || true

serve_mmar "$DG" "$OUT/serve-deepgrow.log"
step "Serve the DeepGrow 3D MMAR (barton serve --models $DG): an interactive model in the AIAA list" \
  curl -s "http://127.0.0.1:$PORT/v1/models?type=deepgrow"
echo
step "A point inside case_9's organ (the label's centre), to click" \
  "$BARTON" info "$DG/data/labelsTr/case_9.nii.gz"
CLICK=$("$BARTON" info "$DG/data/labelsTr/case_9.nii.gz" | sed -n 's/^foreground: .*centre \(\[.*\]\)$/\1/p')
step "One DeepGrow click through the server (AIAA /v1/deepgrow, a foreground point at $CLICK)" \
  curl -s -o "$OUT/click.nii.gz" -w '%{http_code} %{size_download} bytes in %{time_total} s\n' \
  -F "params={\"foreground\": [$CLICK], \"background\": []}" -F "datapoint=@$DG/data/imagesTr/case_9.nii.gz" \
  "http://127.0.0.1:$PORT/v1/deepgrow?model=deepgrow_3d&output=image"
step "Dice of the one-click mask against case_9's label" \
  "$BARTON" metrics --pred "$OUT/click.nii.gz" --label "$DG/data/labelsTr/case_9.nii.gz" --metrics dice
kill "$SERVER"
wait "$SERVER" 2> /dev/null || true

serve_mmar "$DX" "$OUT/serve-dextr3d.log"
step "Serve the DEXTR3D MMAR (barton serve --models $DX): an annotation model in the AIAA list" \
  curl -s "http://127.0.0.1:$PORT/v1/models?type=annotation"
echo
POINTS=$("$BARTON" info "$DX/data/labelsTr/case_9.nii.gz" | sed -n 's/^extremes: *\(\[.*\]\)$/\1/p')
step "Case_9's six extreme points, as a clinician marks them (barton info prints a label's extremes)" \
  echo "$POINTS"
step "DEXTR3D through the server (AIAA /v1/dextr3d, the whole image and the points in its voxel indices)" \
  curl -s -o "$OUT/dextr3d.nii.gz" -w '%{http_code} %{size_download} bytes in %{time_total} s\n' \
  -F "params={\"points\": $POINTS}" -F "datapoint=@$DX/data/imagesTr/case_9.nii.gz" \
  "http://127.0.0.1:$PORT/v1/dextr3d?model=dextr3d&output=image"
step "Dice of the DEXTR3D mask against case_9's label (the automatic model's is above)" \
  "$BARTON" metrics --pred "$OUT/dextr3d.nii.gz" --label "$DX/data/labelsTr/case_9.nii.gz" --metrics dice
kill "$SERVER"
wait "$SERVER" 2> /dev/null || true
cat <<MSG

Checkpoint:   $MMAR/models/model.pt (best val_mean_dice; resume state in checkpoint_last.pt)
TensorBoard:  tensorboard --logdir $MMAR/models
Run summary:  $MMAR/models/train_stats.json
Metrics:      $MMAR/eval/metrics.csv, val_mean_dice_raw.csv, metrics_summary.json
Segmentation: $OUT/infer/case_9/case_9_trans.nii.gz
Export:       $MMAR/models/export (model.onnx, triton/, model.plan, manifest.json)
Served:       $OUT/served.nii.gz (barton serve; its log in $OUT/serve.log)
DeepGrow:     $DG/models/model.pt; one click's mask in $OUT/click.nii.gz (log: $OUT/serve-deepgrow.log)
DEXTR3D:      $DX/models/model.pt; the six points' mask in $OUT/dextr3d.nii.gz (log: $OUT/serve-dextr3d.log)
MSG
