#!/usr/bin/env bash
# Runs every libFuzzer target of fuzz/ for a set time (issue #20; fuzz/README.md).
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
# BUILD_DIR is the clang build with BARTON_FUZZ=ON (make fuzz configures build-san). Each target
# starts from the committed inputs in fuzz/corpus/<target>/ and, where installed, the real files the
# tests use; what it learns goes to BUILD_DIR/fuzz-corpus/<target>/ (not committed). A crash leaves
# its input in fuzz/crashes/<target>/: keep it in fuzz/corpus/<target>/ once fixed, so that the
# replay test runs it for ever. Prints executions per target; exits 1 when any target crashed.
set -uo pipefail
build=${1:?build folder}
seconds=${2:?seconds per target}
shift 2
root="$(cd "$(dirname "$0")/.." && pwd)"
# The Makefile's sanitizer options, when the script is run by hand.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_container_overflow=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(nifti dicom torch_file multipart zip datalist config serve)

seeds_for() {
  case "$1" in
    nifti) ls /usr/lib/python3/dist-packages/nibabel/tests/data/*.nii* 2>/dev/null ;;
    dicom) ls /usr/lib/python3/dist-packages/pydicom/data/test_files/*.dcm \
              /usr/lib/python3/dist-packages/pydicom/data/test_files/dicomdirtests/98892001/CT5N/* 2>/dev/null ;;
  esac
}

cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" || exit 2
summary="$build/fuzz-summary.txt"
: > "$summary"
failed=0
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"
  crashes="$root/fuzz/crashes/$t"
  mkdir -p "$work" "$crashes"
  cp -n "$root/fuzz/corpus/$t/"* "$work/" 2>/dev/null
  while read -r f; do [ -n "$f" ] && cp -n "$f" "$work/$(basename "$f")"; done < <(seeds_for "$t")
  log="$build/fuzz-$t.log"
  echo "fuzz: $t for ${seconds}s (log $log)"
  t0=$(date +%s)
  "$build/fuzz/fuzz_$t" "$work" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 \
    -max_len=1048576 -print_final_stats=1 -artifact_prefix="$crashes/" > "$log" 2>&1
  rc=$?
  took=$(($(date +%s) - t0))
  execs=$(grep -a -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  ft=$(grep -a -Eo 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  status=ok
  if [ $rc -ne 0 ]; then status="CRASH (rc $rc, see $log and $crashes)"; failed=1; fi
  line="$t: ${execs:-?} executions in ${took}s, ${ft:-?} coverage features, $status"
  echo "fuzz: $line"
  echo "$line" >> "$summary"
done
echo "fuzz: summary in $summary"
exit $failed
