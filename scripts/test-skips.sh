#!/usr/bin/env bash
# Prints each test that ctest's last run skipped, with the reason its GTEST_SKIP() gave.
# usage: scripts/test-skips.sh BUILD_DIR
LOG="${1:-build}/Testing/Temporary/LastTest.log"
[ -f "$LOG" ] || exit 0
awk '
  / Skipped$/ { getline reason; next_reason = reason; next }
  /^\[  SKIPPED \] [A-Za-z0-9_]+\.[A-Za-z0-9_\/]+ \(/ { print "skipped: " $4 " (" next_reason ")"; next_reason = "" }
' "$LOG" | sort -u
