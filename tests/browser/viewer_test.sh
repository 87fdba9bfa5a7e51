#!/usr/bin/env bash
# ctest Browser.ViewerClickAndSave: trains small DeepGrow 3D and DEXTR3D models (the sample MMARs'
# configs, small sizes), serves them with a datastore, and runs viewer_test.mjs in Debian's
# Chromium.
# Screenshots are kept in OUT (the test's artifacts). Exit 77 (skipped) with the reason when
# Chromium or the viewer's npm packages are not installed.
# Usage: viewer_test.sh BARTON SOURCE_DIR OUT
set -euo pipefail
BARTON="$1"; SRC="$2"; OUT="$3"
[ -x /usr/bin/chromium ] || { echo "skipped: /usr/bin/chromium is not installed (scripts/install-deps.sh installs it)"; exit 77; }
[ -f "$SRC/viewer/node_modules/playwright-core/index.mjs" ] ||
  { echo "skipped: viewer/node_modules is not installed (make viewer)"; exit 77; }
[ -f "$SRC/viewer/dist/viewer.js" ] || { echo "the viewer bundle is missing: run make viewer"; exit 1; }
mkdir -p "$OUT"
. "$SRC/scripts/serve-lib.sh"
# The sample's inference config at the test's sizes (2 mm, 48^3 crops resized to 32^3).
SETS=(/pre_transforms/2/args/pixdim=[2,2,2] /pre_transforms/5/args/spatial_size=[48,48,48]
      /pre_transforms/6/args/spatial_size=[32,32,32])
W=$(mktemp -d)
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2> /dev/null; rm -rf "$W"' EXIT
M="$W/deepgrow_3d"
mkdir -p "$M/config" "$W/datastore"
cp "$SRC"/mmars/deepgrow_3d/config/*.json "$M/config/"
"$BARTON" data synth "$M/data" --cases 6 --size 40 40 16 --spacing 2 2 5 --seed 5 --lookalike-contrast 20 > /dev/null
"$BARTON" train "$M" --set epochs=40 num_interval_per_valid=10 max_train_interactions=2 max_val_interactions=2 \
  /train/pre_transforms/2/args/pixdim=[2,2,2] /train/pre_transforms/4/args/spatial_size=[48,48,48] \
  /train/pre_transforms/5/args/spatial_size=[32,32,32] > "$W/train.log" 2>&1 || { cat "$W/train.log"; exit 1; }
# A small DEXTR3D model on the same data, trained at the sizes SETS gives every served model
# (48^3 crops around the organ, resized to 32^3).
DX="$W/dextr3d"
mkdir -p "$DX/config"
cp "$SRC"/mmars/dextr3d/config/*.json "$DX/config/"
"$BARTON" data synth "$DX/data" --cases 6 --size 40 40 16 --spacing 2 2 5 --seed 5 --lookalike-contrast 20 > /dev/null
"$BARTON" train "$DX" --set epochs=15 num_interval_per_valid=5 /train/pre_transforms/2/args/pixdim=[2,2,2] \
  /train/pre_transforms/4/args/spatial_size=[48,48,48] /train/pre_transforms/5/args/spatial_size=[32,32,32] \
  > "$W/train-dextr3d.log" 2>&1 || { cat "$W/train-dextr3d.log"; exit 1; }
EXTREMES=$("$BARTON" info "$M/data/labelsTr/case_2.nii.gz" | sed -n 's/^extremes: *\(\[.*\]\)$/\1/p')
cp "$M/data/imagesTr/case_1.nii.gz" "$W/datastore/case_1.nii.gz"
cp "$M/data/imagesTr/case_2.nii.gz" "$W/datastore/case_2.nii.gz"
read -r I J K < <("$BARTON" info "$M/data/labelsTr/case_1.nii.gz" |
  sed -n 's/^foreground: .*centre \[\(.*\), \(.*\), \(.*\)\]$/\1 \2 \3/p')
start_serve "$BARTON" "$W/serve.log" --models "$M" "$DX" --datastore "$W/datastore" --work-dir "$W/work" \
  --set "${SETS[@]}"
node "$SRC/tests/browser/viewer_test.mjs" "$PORT" case_1 "$I" "$J" "$K" "$OUT" \
  "$SRC/viewer/node_modules/playwright-core" "$EXTREMES" || { tail -20 "$W/serve.log"; exit 1; }
# The datastore holds the saved label as the newest `final` version.
ls "$W"/datastore/labels/final/case_1.nii.gz > /dev/null
"$BARTON" info "$W/datastore/labels/final/case_1.nii.gz" | grep '^foreground:'
kill "$SERVER"; wait "$SERVER" 2> /dev/null || true

# The same server with --auth: the page logs in (a wrong password first) and then works.
printf 'open sesame\n' | "$BARTON" serve-user --auth "$W/users.json" --user ana --role annotator --iterations 1000 > /dev/null
start_serve "$BARTON" "$W/serve-auth.log" --models "$M" --datastore "$W/datastore" \
  --work-dir "$W/work-auth" --auth "$W/users.json" --set "${SETS[@]}"
node "$SRC/tests/browser/viewer_auth_test.mjs" "$PORT" ana "open sesame" "$SRC/viewer/node_modules/playwright-core" ||
  { tail -20 "$W/serve-auth.log"; exit 1; }
echo "screenshots: $OUT/viewer-loaded.png $OUT/viewer-click.png $OUT/viewer-saved.png $OUT/viewer-dextr3d.png"
