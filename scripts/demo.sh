#!/usr/bin/env bash
# `make demo`: the main job on the bundled sample data, end to end.
# Today: synthesise CT, inspect it, convert formats, read a real DICOM series, resolve + check the
# sample Clara MMAR and run its pre_transforms. Training joins when the engine lands (issue #5).
set -euo pipefail
BARTON="${1:-build/barton}"
cd "$(dirname "$0")/.."
OUT=demo-out
MMAR=mmars/spleen_ct_seg
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "Synthesise CT-like volumes with labels into the sample MMAR's DATA_ROOT" \
  "$BARTON" data synth "$MMAR/data" --cases 10 --seed 0
step "Inspect one case (LPS orientation, anisotropic spacing, Hounsfield units)" \
  "$BARTON" info "$MMAR/data/imagesTr/case_0.nii.gz"
step "Convert it to MetaImage and back: geometry and dtype survive" \
  "$BARTON" convert "$MMAR/data/imagesTr/case_0.nii.gz" "$OUT/case_0.mha"
"$BARTON" convert "$OUT/case_0.mha" "$OUT/case_0_roundtrip.nii.gz" >/dev/null
DICOM=/usr/lib/python3/dist-packages/pydicom/data/test_files/dicomdirtests/98892001/CT5N
step "Read a real CT DICOM series (pydicom's test data) and write NIfTI" \
  "$BARTON" convert "$DICOM" "$OUT/ct5n.nii.gz"
step "Label the real brain MRIs (mricron-data, ITK examples)" \
  "$BARTON" data sample brain "$OUT/brain"
printf '\n== %s\n$ %s\n' "Resolve the Clara 4.1 spleen config (print_conf), first lines" \
  "$BARTON config show $MMAR --set epochs=100 | head -n 16"
"$BARTON" config show "$MMAR" --set epochs=100 > "$OUT/config_train.resolved.json"
head -n 16 "$OUT/config_train.resolved.json"
step "Check it: names, argument types, references, datalist files" \
  "$BARTON" config check "$MMAR"
step "Run its pre_transforms on one case: what the network sees (4 random 96^3 patches)" \
  "$BARTON" preprocess "$MMAR" --limit 1 --out "$OUT/preprocessed"
printf '\nDemo outputs are in %s; the synthetic data set is in %s/data.\n' "$OUT" "$MMAR"
