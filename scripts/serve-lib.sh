# Sourced by the scripts that start `barton serve` on a free port (scripts/demo.sh,
# bench/serve/*.sh, tests/browser/viewer_test.sh).
# start_serve BARTON LOG ARGS...: starts `BARTON serve ARGS... --port 0` with its output in LOG,
# waits up to 60 s for its "listening on" line and sets SERVER (the pid) and PORT.
start_serve() {
  local barton="$1" log="$2"
  shift 2
  "$barton" serve "$@" --port 0 > "$log" 2>&1 &
  SERVER=$!
  PORT=""
  for _ in $(seq 1 600); do
    PORT=$(grep -o 'listening on https\?://[0-9.]*:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "barton serve did not start:"; cat "$log"
  return 1
}
