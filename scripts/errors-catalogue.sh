#!/usr/bin/env bash
# The catalogue of bad inputs (issue #20): builds each bad input, runs the command a user would run,
# and prints the command, Barton's exact message and the exit code as Markdown. docs/errors.md
# holds this output between its "generated" markers; the test Docs.ErrorsMdIsTheCatalogueOutput
# reruns it and fails when the two differ (regenerate: scripts/errors-catalogue.sh --update).
# HTTP statuses of `barton serve` are in docs/serve.md (tested in tests/serve/).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BARTON=$(realpath "${BARTON_BIN:-$ROOT/build/barton}")
MODE=${1:-print}  # print | --update (rewrite docs/errors.md) | --check (exit 1 when it differs)
W=$(mktemp -d /tmp/barton-errors.XXXXXX)
trap 'rm -rf "$W"' EXIT
PYDICOM=/usr/lib/python3/dist-packages/pydicom/data/test_files

# --- the bad inputs --------------------------------------------------------------------------
"$BARTON" data synth "$W/data" --cases 2 --size 24 24 12 --seed 0 > /dev/null
"$BARTON" convert "$W/data/imagesTr/case_0.nii.gz" "$W/good.nii" > /dev/null
head -c 2000 "$W/good.nii" > "$W/cut.nii"
head -c 300 "$W/data/imagesTr/case_0.nii.gz" > "$W/cut.nii.gz"
printf 'this is not an image%.0s' {1..30} > "$W/junk.nii"
cp "$W/good.nii" "$W/nan-sform.nii"
printf '\x00\x00\xc0\x7f' | dd of="$W/nan-sform.nii" bs=1 seek=280 conv=notrunc status=none
cp "$W/good.nii" "$W/flat-sform.nii"
printf '\x00\x00\x00\x00' | dd of="$W/flat-sform.nii" bs=1 seek=320 conv=notrunc status=none
cp "$W/good.nii" "$W/dims.nii"
printf '\x09\x00' | dd of="$W/dims.nii" bs=1 seek=40 conv=notrunc status=none
cp "$PYDICOM/CT_small.dcm" "$W/bad-vr.dcm"
printf 'J' | dd of="$W/bad-vr.dcm" bs=1 seek=662 conv=notrunc status=none
cp "$PYDICOM/SC_rgb_jpeg.dcm" "$W/implicit-under-explicit.dcm"
cp "$PYDICOM/SC_rgb_small_odd.dcm" "$W/planar.dcm"  # Planar Configuration 2: GDCM asserts
printf '\x02' | dd of="$W/planar.dcm" bs=1 seek=1304 conv=notrunc status=none
mkdir -p "$W/series" "$W/empty"
cp "$PYDICOM"/dicomdirtests/98892001/CT5N/* "$W/series/"
head -c 3500 "$PYDICOM/dicomdirtests/98892001/CT5N/2392" > "$W/series/2392"
cp "$PYDICOM/MR_truncated.dcm" "$W/mr-cut.dcm"
mkdir -p "$W/gap"
cp "$PYDICOM"/dicomdirtests/98892001/CT5N/* "$W/gap/"
rm "$W/gap/2693"
cp -r "$ROOT/mmars/spleen_ct_seg" "$W/mmar"
rm -rf "$W/mmar/models" "$W/mmar/eval" "$W/mmar/data"
cp -r "$W/data" "$W/mmar/data"
mk_variant() {  # $1 = name, $2 = sed expression on config_train.json
  cp -r "$W/mmar" "$W/$1"
  sed -i "$2" "$W/$1/config/config_train.json"
}
mk_variant typo-loss 's/"name": "DiceLoss"/"name": "DiseLoss"/'
mk_variant typo-var 's/"lr": "{learning_rate}"/"lr": "{learning_rat}"/'
mk_variant broken-json '0,/"epochs"/s/"epochs": *\([0-9]*\),/"epochs": \1/'
mk_variant python-path 's/"name": "DiceLoss", /"path": "monai.losses.DiceLoss", /'
mkdir -p "$W/mmar/models"
printf 'not a checkpoint' > "$W/mmar/models/model.pt"
cp -r "$W/mmar" "$W/damaged-ckpt"
cp "$ROOT/fuzz/corpus/torch_file/rebuild_tensor_not_storage" "$W/damaged-ckpt/models/model.pt"
cp -r "$W/mmar" "$W/missing-image"
sed -i 's#imagesTr/case_1.nii.gz#imagesTr/case_9.nii.gz#' "$W/missing-image/data/dataset.json"

# --- the catalogue ---------------------------------------------------------------------------
out() {
  printf '%s\n' "$@"
}
case_() {  # $1 = title, rest = arguments to barton
  local title=$1
  shift
  local msg rc
  msg=$(cd "$W" && "$BARTON" "$@" 2>&1 > /dev/null)
  rc=$?
  msg=$(printf '%s\n' "$msg" | grep -v '^\[' | sed "s#$W/##g; s#$W#.#g" | head -4)
  out "" "### $title" "" '```' "\$ barton $(printf '%s ' "$@" | sed "s#$W/##g; s# \$##")" "$msg" "(exit $rc)" '```'
}
generate() {
  out "## Image files"
  case_ "A file that does not exist" info missing.nii.gz
  case_ "A NIfTI cut inside its voxel data" info cut.nii
  case_ "A gzip NIfTI cut short" info cut.nii.gz
  case_ "Not a NIfTI file" info junk.nii
  case_ "A NaN in the sform" info nan-sform.nii
  case_ "A singular sform (every voxel on one plane)" convert flat-sform.nii out.nii.gz
  case_ "A NIfTI header with an impossible number of dimensions" info dims.nii
  case_ "A DICOM series with one slice cut inside its pixel data" info series
  case_ "A single DICOM file cut short" info mr-cut.dcm
  case_ "A DICOM element with an unknown value representation" info bad-vr.dcm
  case_ "A DICOM file whose data set contradicts its transfer syntax" info implicit-under-explicit.dcm
  case_ "A DICOM file on which GDCM aborts while decoding" info planar.dcm
  case_ "A DICOM series with a missing slice" info gap
  case_ "A folder without DICOM files" info empty
  out "" "## Configs"
  case_ "A misspelt component name" config check typo-loss
  case_ "A misspelt variable" config check typo-var
  case_ "A JSON syntax error" config check broken-json
  case_ "Clara's Python class path" config check python-path
  case_ "An unknown variable in --set" config show mmar --set epoch=10
  case_ "An unknown subcommand" frobnicate
  out "" "## Data and checkpoints"
  case_ "A datalist entry whose file is missing" config check missing-image
  case_ "Resume with no run to resume" train mmar --resume
  case_ "A checkpoint that is not a torch.save file" validate mmar --set dont_load_ckpt_model=false
  case_ "A torch.save file whose pickle is damaged" validate damaged-ckpt --set dont_load_ckpt_model=false
}

body=$(generate)
doc="$ROOT/docs/errors.md"
printf '%s\n' "$body" > "$W/now"
case "$MODE" in
  --update|--check)
    python3 - "$doc" "$W/now" "$MODE" <<'PYEOF'
import sys
doc, now, mode = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
begin = "<!-- generated by scripts/errors-catalogue.sh: begin -->\n"
end = "<!-- generated: end -->"
text = open(doc).read()
head, rest = text.split(begin)
current, tail = rest.split(end)
if mode == "--update":
    open(doc, "w").write(head + begin + now + end + tail)
elif current != now:
    import difflib
    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), now.splitlines(True), "docs/errors.md", "now"))
    print("docs/errors.md is out of date: run scripts/errors-catalogue.sh --update")
    sys.exit(1)
else:
    print(f"docs/errors.md matches what Barton prints for all {now.count(chr(10) + '### ')} bad inputs")
PYEOF
    ;;
  *) cat "$W/now" ;;
esac
