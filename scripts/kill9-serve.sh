#!/usr/bin/env bash
# Crash consistency of `barton serve` (issue #20): a client saves labels to the datastore without
# pause (PUT /datastore/label, as MONAI Label's client does) while the server is killed with
# kill -9 at random moments, many times. After every kill: every saved label version loads and
# sits on its image's grid, every version's metadata parses and names the file's SHA-256, and no
# file at a final name is partial; once the server is up again, each current label is the newest
# version (the store repairs a link an interrupted save left behind).
# Usage: scripts/kill9-serve.sh [BARTON] [KILLS] [WORK]   (defaults: build/barton 200 a temp dir)
set -uo pipefail
KILLS=${2:-200}
WORK=${3:-$(mktemp -d /tmp/barton-kill9-serve.XXXXXX)}
mkdir -p "$WORK/bin"
cp "$(realpath "${1:-build/barton}")" "$WORK/bin/barton"  # a rebuild must not change what runs
BARTON="$WORK/bin/barton"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY=/usr/bin/python3
MMAR="$WORK/spleen"
DS="$WORK/datastore"
mkdir -p "$MMAR" "$DS"
cp -r "$ROOT/mmars/spleen_ct_seg/config" "$MMAR/"
"$BARTON" data synth "$MMAR/data" --cases 4 --size 48 48 24 --spacing 3 3 6 --seed 1 > /dev/null || exit 2
cp "$MMAR"/data/imagesTr/*.nii.gz "$DS/"
export BARTON_THREADS=1
"$BARTON" train "$MMAR" --set epochs=1 amp=false /train/pre_transforms/5/args/spatial_size=[32,32,32] \
  /validate/inferer/args/roi_size=[48,48,48] > "$WORK/train.log" 2>&1 ||
  { echo "kill9-serve: training the served model failed"; tail "$WORK/train.log"; exit 2; }

# The client: MONAI Label's save_label over http.client (its boundary, part 'label'), in a loop,
# alternating the true label and its complement so that consecutive versions differ.
cat > "$WORK/client.py" <<'PYEOF'
import http.client, itertools, json, os, sys
port, ds, labels = int(sys.argv[1]), sys.argv[2], sys.argv[3]
B = "----------lImIt_of_THE_fIle_eW_$"
ids = sorted(f[:-7] for f in os.listdir(ds) if f.endswith(".nii.gz"))
import nibabel as nib, numpy as np, io, gzip
bodies = {}
for i in ids:
    img = nib.load(os.path.join(labels, i + ".nii.gz"))
    a = np.asarray(img.dataobj).astype(np.uint8)
    for variant, arr in (("true", a), ("flip", (1 - a).astype(np.uint8))):
        out = nib.Nifti1Image(arr, img.affine)
        bodies[(i, variant)] = gzip.compress(out.to_bytes())
for n in itertools.count():
    i = ids[n % len(ids)]
    data = bodies[(i, "true" if (n // len(ids)) % 2 == 0 else "flip")]
    body = (f"--{B}\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n"
            + json.dumps({"client_id": "kill9", "n": n}) + f"\r\n--{B}\r\n"
            + "Content-Disposition: form-data; name=\"label\"; filename=\"label.nii.gz\"\r\n\r\n"
            ).encode() + data + f"\r\n--{B}--\r\n\r\n".encode()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("PUT", f"/datastore/label?image={i}&tag=final", body,
                  {"content-type": "multipart/form-data; boundary=" + B})
        r = c.getresponse()
        answer = r.read()
        if r.status != 200:
            print(f"client: status {r.status}: {answer[:300]}", flush=True)
            sys.exit(3)
        print(f"saved {i} {json.loads(answer)['version']}", flush=True)
    except (ConnectionError, OSError, http.client.HTTPException):
        sys.exit(0)  # the server was killed
PYEOF

# The checker, started once (imports cost seconds): "check" -> damaged files, then "END";
# "current" -> also requires each current label to be the newest version.
cat > "$WORK/check.py" <<'PYEOF'
import hashlib, json, os, sys
import nibabel as nib
ds = sys.argv[1]
verified = {}  # path -> size of each version already checked whole
shapes = {f[:-7]: nib.load(os.path.join(ds, f)).shape for f in os.listdir(ds) if f.endswith(".nii.gz")}
def problems(current):
    bad, versions = [], 0
    root = os.path.join(ds, "labels")
    for tag in os.listdir(root) if os.path.isdir(root) else []:
        vroot = os.path.join(root, tag, ".versions")
        for i in os.listdir(vroot) if os.path.isdir(vroot) else []:
            files = sorted(f for f in os.listdir(os.path.join(vroot, i)) if f.endswith(".nii.gz") and not f.startswith("."))
            for f in files:
                p = os.path.join(vroot, i, f)
                versions += 1
                if p in verified:  # versions are never written again: the size must not change
                    if os.path.getsize(p) != verified[p]:
                        bad.append(f"{p}: changed after it was saved")
                    continue
                try:
                    img = nib.load(p)
                    img.get_fdata()
                    if img.shape != shapes[i]:
                        raise ValueError(f"shape {img.shape}, image {shapes[i]}")
                    m = os.path.join(vroot, i, f[:-7] + ".json")
                    if os.path.exists(m):
                        meta = json.load(open(m))
                        if meta["sha256"] != hashlib.sha256(open(p, "rb").read()).hexdigest():
                            raise ValueError("sha256 in its .json differs")
                    verified[p] = os.path.getsize(p)
                except Exception as e:  # noqa: BLE001
                    bad.append(f"{p}: {e}")
            cur = os.path.join(root, tag, i + ".nii.gz")
            if os.path.exists(cur):
                try:
                    nib.load(cur).get_fdata()
                except Exception as e:  # noqa: BLE001
                    bad.append(f"{cur}: {e}")
            if current and files and (not os.path.exists(cur) or
                                      not os.path.samefile(cur, os.path.join(vroot, i, files[-1]))):
                bad.append(f"{cur} is not the newest version {files[-1]} after a restart")
    return bad, versions
for line in sys.stdin:
    bad, versions = problems(line.strip() == "current")
    for b in bad:
        print(b)
    print(f"END {versions}", flush=True)
PYEOF
coproc CHECKER { "$PY" "$WORK/check.py" "$DS"; }
PROBLEMS=""
VERSIONS=0
check() {  # $1 = check | current; sets PROBLEMS and VERSIONS
  local line
  PROBLEMS=""
  echo "$1" >&"${CHECKER[1]}"
  while read -r line <&"${CHECKER[0]}"; do
    if [[ $line == END* ]]; then VERSIONS=${line#END }; break; fi
    PROBLEMS+="$line"$'\n'
  done
  [ -z "$PROBLEMS" ]
}

start_server() {  # sets SERVER_PID and PORT
  "$BARTON" serve --models "$MMAR" --datastore "$DS" --port 0 --work-dir "$WORK/serve-work" \
    > "$WORK/serve.log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 300); do
    PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/serve.log" | grep -o '[0-9]*$')
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2> /dev/null || break
    sleep 0.05
  done
  echo "kill9-serve: the server did not start"
  cat "$WORK/serve.log"
  exit 2
}

kills=0
repairs=0
start=$(date +%s)
while [ "$kills" -lt "$KILLS" ]; do
  start_server
  repairs=$((repairs + $(grep -c "a save was interrupted" "$WORK/serve.log")))
  if ! check current; then
    echo "kill9-serve: after restart $kills: WRONG CURRENT LABELS"
    echo "$PROBLEMS"
    exit 1
  fi
  "$PY" "$WORK/client.py" "$PORT" "$DS" "$MMAR/data/labelsTr" > "$WORK/client.log" 2>&1 &
  client=$!
  delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.8 + rand() * 2 }')
  sleep "$delay"
  kill -9 "$SERVER_PID" 2> /dev/null
  wait "$SERVER_PID" 2> /dev/null
  kills=$((kills + 1))
  wait "$client"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "kill9-serve: the client failed (rc $rc) before the kill:"
    tail -3 "$WORK/client.log"
    tail -5 "$WORK/serve.log"
    exit 1
  fi
  saved=$(grep -c "^saved" "$WORK/client.log")
  # Every save the server answered is on disk.
  while read -r _ id version; do
    f=$(printf '%s/labels/final/.versions/%s/%04d.nii.gz' "$DS" "$id" "$version")
    [ -f "$f" ] || { echo "kill9-serve: an answered save is missing: $f"; exit 1; }
  done < <(grep "^saved" "$WORK/client.log")
  if ! check check; then
    echo "kill9-serve: kill $kills (${delay}s, $saved saves): DAMAGED FILES"
    echo "$PROBLEMS"
    exit 1
  fi
  echo "kill9-serve: kill $kills after ${delay}s: $saved label saves answered; $VERSIONS versions, all whole"
done
start_server
repairs=$((repairs + $(grep -c "a save was interrupted" "$WORK/serve.log")))
check current || { echo "kill9-serve: after the last restart: $PROBLEMS"; exit 1; }
kill "$SERVER_PID"
wait "$SERVER_PID" 2> /dev/null
leftovers=$(find "$DS" -name '.tmp.*' -o -name '*.link-*' | wc -l)
echo "kill9-serve: $kills kills in $(( $(date +%s) - start )) s: $VERSIONS label versions saved, all whole and on their image's grid; $repairs current-label links repaired at restart; $leftovers unfinished temporary file(s) left (never at a final name)"
