#!/usr/bin/env bash
# `make bench`: Barton and the equivalent Python (python3-torch) programs side by side, on the same
# generated volumes, same thread counts. Prints a table; JSON lines go to BUILD/bench-results.jsonl.
set -euo pipefail
BUILD="${1:-build}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="$BUILD/bench-data"
CASES="${BENCH_CASES:-6}"
THREADS="${BENCH_THREADS:-$(nproc)}"
REPEATS="${BENCH_REPEATS:-3}"
if [ ! -f "$DATA/dataset.json" ]; then
  "$BUILD/barton" data synth "$DATA" --cases "$((CASES + 1))" --seed 1 >/dev/null
fi
OUT="$BUILD/bench-results.jsonl"
: > "$OUT"
echo "pipeline: $CASES CT-like cases (112x112x40 at 1.5x1.5x4 mm -> 1 mm), spleen deterministic chain + 4 x 96^3 patches, $THREADS threads"
"$BUILD/bench/pipeline_bench" "$DATA/dataset.json" --repeats "$REPEATS" --threads "$THREADS" --workers "$THREADS" | tee -a "$OUT"
/usr/bin/python3 "$ROOT/bench/pipeline_bench.py" "$DATA/dataset.json" --repeats "$REPEATS" --threads "$THREADS" --workers "$THREADS" | tee -a "$OUT"
SW="${BENCH_SW:-512,512,100}"
SW_REPEATS="${BENCH_SW_REPEATS:-1}"
MODEL_OUT="$BUILD/bench-model.jsonl"
: > "$MODEL_OUT"
# Each stage in its own process on each side, so that each peak RSS belongs to one stage.
for SIZE in 64 96; do
  echo "model: MONAI spleen UNet training step, batch 2 at ${SIZE}^3 (DiceLoss + Adam)"
  "$BUILD/bench/model_bench" --mode step --size "$SIZE" --threads "$THREADS" | tee -a "$MODEL_OUT"
  /usr/bin/python3 "$ROOT/bench/model_bench.py" --mode step --size "$SIZE" --threads "$THREADS" | tee -a "$MODEL_OUT"
done
echo "model: the training run's batch, 8 x 96^3 (2 cases x 4 patches), one step after one warm-up, for peak memory"
"$BUILD/bench/model_bench" --mode step --size 96 --batch 8 --steps 1 --threads "$THREADS" | tee -a "$MODEL_OUT"
/usr/bin/python3 "$ROOT/bench/model_bench.py" --mode step --size 96 --batch 8 --steps 1 --threads "$THREADS" | tee -a "$MODEL_OUT"
echo "model: sliding window roi 96^3 overlap 0.25 gaussian, sw_batch_size 2, over $SW ($SW_REPEATS repeat(s))"
"$BUILD/bench/model_bench" --mode sw --sw "$SW" --sw-repeats "$SW_REPEATS" --threads "$THREADS" | tee -a "$MODEL_OUT"
/usr/bin/python3 "$ROOT/bench/model_bench.py" --mode sw --sw "$SW" --sw-repeats "$SW_REPEATS" --threads "$THREADS" | tee -a "$MODEL_OUT"
PLAN_SW="${BENCH_PLAN_SW:-192,192,96}"
echo "plan: the same UNet (batch norm) from the checkpoint vs from its exported inference plan, sliding window over $PLAN_SW; fp32, then bf16 plan vs autocast"
PLAN_OUT="$BUILD/bench-plan.jsonl"
: > "$PLAN_OUT"
for PREC in fp32 bf16; do
  "$BUILD/bench/plan_bench" --threads "$THREADS" --sw "$PLAN_SW" --repeats "$REPEATS" --precision "$PREC" | tee -a "$PLAN_OUT"
done
DICOM_DIR="$BUILD/bench-dicom"
[ -f "$DICOM_DIR/slice_0099.dcm" ] || /usr/bin/python3 "$ROOT/bench/dicom_series.py" "$DICOM_DIR" --slices 100 --size 512
echo "dicom: a 512x512x100 CT series read (walk + GDCM guard in a forked child + ITK/GDCM), and the guard alone"
"$BUILD/bench/dicom_bench" "$DICOM_DIR" --repeats "$REPEATS" | tee -a "$OUT"
EPOCHS="${BENCH_TRAIN_EPOCHS:-2}"
# Iterations per epoch as the loader makes them: ceil(training cases / batch 2), last batch kept.
ITERS=$(/usr/bin/python3 -c "import json,sys; n=len(json.load(open(sys.argv[1]))['training']); print($EPOCHS*((n+1)//2))" "$DATA/dataset.json")
echo "training run: spleen MMAR, $EPOCHS epochs = $ITERS iterations of batch 2 x 4 patches of 96^3 (cache fill included, no validation), $THREADS threads"
TRAIN_OUT="$BUILD/bench-train.jsonl"
: > "$TRAIN_OUT"
ABS_DATA="$(cd "$DATA" && pwd)"
rm -rf "$BUILD/bench-train"
# Barton: the sample MMAR's config unchanged but for the data paths, a fixed iteration count, no
# validation, no train metric and fp32 (the Python side has none of these).
/usr/bin/time -f '%e %M' -o "$BUILD/bench-train.time" env BARTON_THREADS="$THREADS" BARTON_LOG_EVERY=1000 \
  "$BUILD/barton" train "$ROOT/mmars/spleen_ct_seg" --no-train-stats --set DATASET_JSON="$ABS_DATA/dataset.json" \
  DATA_ROOT="$ABS_DATA" MMAR_CKPT_DIR="$(cd "$BUILD" && pwd)/bench-train" epochs="$EPOCHS" amp=false \
  num_interval_per_valid=1000 /train/key_metric/disabled=true \
  /train/dataset/args/num_workers="$THREADS" > "$BUILD/bench-train.log"
read -r WALL RSS_KB < "$BUILD/bench-train.time"
echo "{\"bench\": \"train\", \"impl\": \"barton\", \"iterations\": $ITERS, \"threads\": $THREADS, \"total_s\": $WALL, \"peak_rss_mb\": $((RSS_KB / 1024))}" | tee -a "$TRAIN_OUT"
/usr/bin/python3 "$ROOT/bench/train_bench.py" "$ABS_DATA/dataset.json" --iterations "$ITERS" --threads "$THREADS" \
  --workers "$THREADS" | tee -a "$TRAIN_OUT"
# Scaling: the same run as 2 data-parallel ranks (c10d, Gloo) with half the threads each.
if [ "$THREADS" -ge 2 ]; then
  rm -rf "$BUILD/bench-train"
  /usr/bin/time -f '%e %M' -o "$BUILD/bench-train2.time" env BARTON_THREADS="$((THREADS / 2))" BARTON_LOG_EVERY=1000 \
    "$BUILD/barton" train "$ROOT/mmars/spleen_ct_seg" --nproc 2 --set DATASET_JSON="$ABS_DATA/dataset.json" \
    DATA_ROOT="$ABS_DATA" MMAR_CKPT_DIR="$(cd "$BUILD" && pwd)/bench-train" epochs="$EPOCHS" amp=false \
    num_interval_per_valid=1000 /train/key_metric/disabled=true /train/dataset/args/num_workers=1 > "$BUILD/bench-train2.log" 2>&1
  read -r WALL2 _ < "$BUILD/bench-train2.time"
  AR=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('allreduce_ms_per_step', 0))" "$BUILD/bench-train/train_stats.json")
  echo "{\"bench\": \"train\", \"impl\": \"barton-2ranks\", \"iterations\": $ITERS, \"threads\": $THREADS, \"total_s\": $WALL2, \"allreduce_ms_per_step\": $AR}" | tee -a "$TRAIN_OUT"
fi
/usr/bin/python3 - "$OUT" "$MODEL_OUT" "$TRAIN_OUT" "$PLAN_OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
b = next(r for r in rows if r["impl"] == "barton")
p = next(r for r in rows if r["impl"] == "python")
mrows = [json.loads(l) for l in open(sys.argv[2])]
def model_row(impl, mode, size=None, batch=None):
    return next(r for r in mrows if r["impl"] == impl and r["mode"] == mode and (size is None or r["size"] == size)
                and (batch is None or r["batch"] == batch))
print()
print(f"{'stage':<34}{'python (s)':>12}{'barton (s)':>12}{'python/barton':>15}")
for key, name in (("deterministic_s", "deterministic chain (cache fill)"), ("random_s", "random patch sampling")):
    print(f"{name:<34}{p[key]:>12.3f}{b[key]:>12.3f}{p[key] / b[key]:>14.2f}x")
print(f"{'pipeline peak RSS (MB)':<34}{p['peak_rss_mb']:>12.0f}{b['peak_rss_mb']:>12.0f}{b['peak_rss_mb'] / p['peak_rss_mb']:>14.2f}x (barton/python)")
for size in (64, 96):
    mb, mp = model_row("barton", "step", size, 2), model_row("python", "step", size, 2)
    print(f"{'UNet training step ' + str(size) + '^3 x 2 (s)':<34}{mp['train_step_s']:>12.3f}{mb['train_step_s']:>12.3f}{mp['train_step_s'] / mb['train_step_s']:>14.2f}x"
          f"  spread barton {mb['train_step_min_s']:.3f}-{mb['train_step_max_s']:.3f}, python {mp['train_step_min_s']:.3f}-{mp['train_step_max_s']:.3f}")
    print(f"{'  peak RSS (MB)':<34}{mp['peak_rss_mb']:>12.0f}{mb['step_peak_rss_mb']:>12.0f}{mb['step_peak_rss_mb'] / mp['peak_rss_mb']:>14.2f}x (barton/python)")
    print(f"{'  achieved GFLOP/s':<34}{'':>12}{mb['step_gflops_per_s']:>12.1f}   {100 * mb['step_gflops_per_s'] / mb['cpu_peak_gflops_per_s']:.0f}% of the fp32 peak "
          f"({mb['cpu_peak_gflops_per_s']:.0f} GFLOP/s on {mb['threads']} threads; {mb['step_gflop']:.1f} GFLOP per step)")
mb, mp = model_row("barton", "step", 96, 8), model_row("python", "step", 96, 8)
print(f"{'UNet step 96^3 x 8 (s)':<34}{mp['train_step_s']:>12.3f}{mb['train_step_s']:>12.3f}{mp['train_step_s'] / mb['train_step_s']:>14.2f}x")
print(f"{'  peak RSS (MB)':<34}{mp['peak_rss_mb']:>12.0f}{mb['step_peak_rss_mb']:>12.0f}{mb['step_peak_rss_mb'] / mp['peak_rss_mb']:>14.2f}x (barton/python)")
mb, mp = model_row("barton", "sw"), model_row("python", "sw")
vol = "x".join(str(v) for v in mb["sw_volume"])
print(f"{'sliding window ' + vol + ' (s)':<34}{mp['sw_s']:>12.3f}{mb['sw_s']:>12.3f}{mp['sw_s'] / mb['sw_s']:>14.2f}x")
print(f"{'  peak RSS (MB)':<34}{mp['peak_rss_mb']:>12.0f}{mb['peak_rss_mb']:>12.0f}{mb['peak_rss_mb'] / mp['peak_rss_mb']:>14.2f}x (barton/python)")
trows = [json.loads(l) for l in open(sys.argv[3])]
tb = next(r for r in trows if r["impl"] == "barton")
tp = next(r for r in trows if r["impl"] == "python")
print(f"{'training run, whole process (s)':<34}{tp['total_s']:>12.1f}{tb['total_s']:>12.1f}{tp['total_s'] / tb['total_s']:>14.2f}x")
t2 = next((r for r in trows if r["impl"] == "barton-2ranks"), None)
if t2:
    print(f"{'training, 2 ranks x half threads (s)':<34}{'':>12}{t2['total_s']:>12.1f}{tb['total_s'] / t2['total_s']:>14.2f}x (1 rank / 2 ranks); all-reduce {t2['allreduce_ms_per_step']:.1f} ms per step")
print(f"{'training run peak RSS (MB)':<34}{tp['peak_rss_mb']:>12.0f}{tb['peak_rss_mb']:>12.0f}{tb['peak_rss_mb'] / tp['peak_rss_mb']:>14.2f}x (barton/python)")
for r in (json.loads(l) for l in open(sys.argv[4])):
    name = f"sliding window, {r['precision']} plan"
    print(f"{name:<34}{'ckpt ' + format(r['checkpoint_s'], '.3f'):>12}{r['plan_s']:>12.3f}{r['checkpoint_s'] / r['plan_s']:>14.2f}x (checkpoint/plan); argmax Dice {r['argmax_dice']:.4f}")
print(f"allocator: {mb.get('allocator', '?')}; medians of {b['repeats']} repeats; spread barton det {b['deterministic_min_s']:.3f}-{b['deterministic_max_s']:.3f} s, "
      f"python det {p['deterministic_min_s']:.3f}-{p['deterministic_max_s']:.3f} s")
PY
