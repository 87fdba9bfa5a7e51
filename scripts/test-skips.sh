#!/usr/bin/env bash
# Prints each test that ctest's last run skipped, with the reason its GTEST_SKIP() gave.
# usage: scripts/test-skips.sh BUILD_DIR
LOG="${1:-build}/Testing/Temporary/LastTest.log"
[ -f "$LOG" ] || exit 0
awk '
  / Skipped$/ { getline reason; next_reason = reason; next }
  /^\[  SKIPPED \] [A-Za-z0-9_]+\.[A-Za-z0-9_\/]+ \(/ {
    # gtest: the reason is on the line before; script tests put it in the parentheses.
    if (next_reason == "") { r = $0; sub(/^[^(]*\(/, "", r); sub(/\)$/, "", r); next_reason = r }
    print "skipped: " $4 " (" next_reason ")"; next_reason = "" }
' "$LOG" | sort -u
