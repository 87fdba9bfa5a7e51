#!/usr/bin/env bash
# Crash consistency (issue #20): kill -9 `barton train`, `validate` and `export` at random moments,
# many times, and check after every kill that no file Barton wrote is truncated or half-written,
# that every checkpoint loads, and that `train --resume` goes on; at the end the run completes.
# Usage: scripts/kill9-campaign.sh [BARTON] [KILLS] [WORK]   (defaults: build/barton 200 a temp dir)
# Prints one line per kill and a summary; exits 1 on the first damaged file.
set -uo pipefail
KILLS=${2:-200}
WORK=${3:-$(mktemp -d /tmp/barton-kill9.XXXXXX)}
# A copy of the binary: a rebuild during the campaign must not change (or half-write) what runs.
mkdir -p "$WORK/bin"
cp "$(realpath "${1:-build/barton}")" "$WORK/bin/barton"
BARTON="$WORK/bin/barton"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY=/usr/bin/python3
MMAR="$WORK/mmar"
mkdir -p "$MMAR"
cp -r "$ROOT/mmars/spleen_ct_seg/config" "$MMAR/"
"$BARTON" data synth "$MMAR/data" --cases 4 --size 48 48 24 --spacing 3 3 6 --seed 1 > /dev/null || exit 2
# Small and long: 32^3 patches, validation every epoch (so best checkpoints are written often).
SETS=(epochs=400 num_interval_per_valid=1 amp=false learning_rate=1e-3
      /train/pre_transforms/5/args/spatial_size=[32,32,32] /validate/inferer/args/roi_size=[48,48,48])
export BARTON_THREADS=1

# Checks every file under the MMAR's models/ and eval/: checkpoints load with torch, JSON parses,
# CSV rows have the header's column count, TensorBoard event files are whole records to the end,
# an export folder is complete (barton verify) or absent. One Python process (started once: importing
# torch costs seconds) answers each "check" line with the damaged files and a line "END".
cat > "$WORK/check.py" <<'PYEOF'
import json, os, struct, sys, torch
root = sys.argv[1]
def damaged():
    bad = []
    for d in ("models", "eval"):
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                p = os.path.join(dirpath, f)
                if f.startswith(".tmp."):
                    continue  # an unfinished write_file_atomic: never at a final name
                try:
                    if f.endswith(".pt"):
                        torch.load(p, map_location="cpu")
                    elif f.endswith(".json"):
                        json.load(open(p))
                    elif f.endswith(".csv"):
                        rows = [r for r in open(p).read().split("\n") if r]
                        if rows and any(r.count(",") != rows[0].count(",") for r in rows):
                            raise ValueError("ragged CSV")
                    elif f.startswith("events.out.tfevents"):
                        b = open(p, "rb").read()
                        i = 0
                        while i < len(b):
                            if i + 12 > len(b):
                                raise ValueError(f"partial record header at byte {i}")
                            (n,) = struct.unpack("<Q", b[i:i + 8])
                            i += 12 + n + 4
                        if i != len(b):
                            raise ValueError("last record cut short")
                except Exception as e:  # noqa: BLE001
                    bad.append(f"{p}: {e}")
    return bad
for line in sys.stdin:
    for b in damaged():
        print(b)
    print("END", flush=True)
PYEOF
coproc CHECKER { "$PY" "$WORK/check.py" "$MMAR"; }
PROBLEMS=""
check_files() {  # sets PROBLEMS (not in a subshell: the checker's pipes live in this shell)
  local line
  PROBLEMS=""
  echo check >&"${CHECKER[1]}"
  while read -r line <&"${CHECKER[0]}"; do
    [ "$line" = END ] && break
    PROBLEMS+="$line"$'\n'
  done
  [ -z "$PROBLEMS" ] || return 1
  if [ -d "$MMAR/models/export" ]; then
    "$BARTON" verify "$MMAR/models/export" > "$WORK/verify.log" 2>&1 ||
      { PROBLEMS="export folder fails verify: $(cat "$WORK/verify.log")"; return 1; }
  fi
}

run_and_kill() {  # $1 = delay in seconds, rest = command
  local delay=$1
  shift
  "$@" > "$WORK/last.log" 2>&1 &
  local pid=$!
  sleep "$delay"
  if kill -0 "$pid" 2> /dev/null; then
    kill -9 "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    echo killed
  else
    wait "$pid"
    echo "finished rc=$?"
  fi
}

# Two whole epochs first, so that validate, export and --resume have a checkpoint from the start.
"$BARTON" train "$MMAR" --set "${SETS[@]}" epochs=2 > "$WORK/first.log" 2>&1 ||
  { echo "kill9: the first two epochs failed"; tail "$WORK/first.log"; exit 2; }
kills=0
trial=0
start=$(date +%s)
while [ "$kills" -lt "$KILLS" ]; do
  trial=$((trial + 1))
  delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 9 }')
  case $((trial % 4)) in
    0) what=validate; cmd=("$BARTON" validate "$MMAR" --set /inferer/args/roi_size=[48,48,48]) ;;
    1) what=export; cmd=("$BARTON" export "$MMAR" --input-shape 1,1,32,32,32) ;;
    *) what=train
       if [ -f "$MMAR/models/checkpoint_last.pt" ]; then
         cmd=("$BARTON" train "$MMAR" --resume --set "${SETS[@]}")
       else
         cmd=("$BARTON" train "$MMAR" --set "${SETS[@]}")
       fi ;;
  esac
  if [ "$what" != train ] && [ ! -f "$MMAR/models/model.pt" ]; then continue; fi
  outcome=$(run_and_kill "$delay" "${cmd[@]}")
  [ "$outcome" = killed ] && kills=$((kills + 1))
  if ! check_files; then
    echo "kill9: trial $trial ($what, ${delay}s, $outcome): DAMAGED FILES"
    echo "$PROBLEMS"
    tail -5 "$WORK/last.log"
    exit 1
  fi
  if [ "$outcome" != killed ] && ! grep -q "rc=0" <<< "$outcome"; then
    echo "kill9: trial $trial ($what) ended with $outcome:"
    tail -5 "$WORK/last.log"
    exit 1
  fi
  echo "kill9: trial $trial: $what ${delay}s: $outcome; files whole (kills so far: $kills)"
done
# The interrupted run completes from its last checkpoint.
"$BARTON" train "$MMAR" --resume --set "${SETS[@]}" epochs=$(($(
  "$PY" -c "import torch,sys; print(int(torch.load(sys.argv[1], map_location='cpu').get('epoch', 0)))" \
  "$MMAR/models/checkpoint_last.pt") + 1)) > "$WORK/final.log" 2>&1 || { echo "kill9: final --resume failed"; tail "$WORK/final.log"; exit 1; }
check_files || { echo "kill9: damaged after the final run: $PROBLEMS"; exit 1; }
leftovers=$(find "$MMAR" -name '.tmp.*' | wc -l)
echo "kill9: $kills kills over $trial trials in $(( $(date +%s) - start )) s: no damaged file; final --resume completed; $leftovers unfinished temporary file(s) left (never at a final name)"
