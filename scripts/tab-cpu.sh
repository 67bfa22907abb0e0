#!/usr/bin/env bash
# CPU of a browser tab in a call: runs the tab <-> headless peer voice call
# of the tests (web/tests/voice/browser-call.mjs: a real server, a release
# softphone peer, headless Chromium with its fake microphone) and samples
# the summed utime+stime of every Chromium process (/proc/PID/stat) twice a
# second; prints the CPU share of one core over the call's middle (from 1 s
# after the first voice sample to the last sample before the call ends).
#
#   scripts/tab-cpu.sh [SOFTPHONE_BINARY]    (default target/release/softphone)
#
# An upper bound for the phone page: the test page also records what it
# sends and hears, and Chromium's browser, GPU and audio processes count.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/release/softphone}
WORK=$(mktemp -d)
trap 'kill $SAMPLER 2>/dev/null || true; rm -rf "$WORK"' EXIT
TICK=$(getconf CLK_TCK)
sample() {
  while true; do
    local total=0 p s
    for p in $(pgrep -f chromium || true); do
      s=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
      total=$((total + s))
    done
    echo "$(date +%s.%N) $total $(pgrep -fc chromium || true)"
    sleep 0.5
  done
}
sample >"$WORK/samples" & SAMPLER=$!
(cd "$ROOT/web" && node tests/voice/browser-call.mjs --softphone "$BIN" \
  --speech "$ROOT/crates/core/tests/data/speech-harvard-22k.wav" --processing on --out "$WORK/out") \
  >"$WORK/result" 2>/dev/null
kill $SAMPLER
python3 - "$WORK/samples" "$WORK/result" "$TICK" <<'PY'
import json, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
result = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
tick = float(sys.argv[3])
start, stop = result["sent_start_ms"] / 1000 + 1, result["peer_stopped_ms"] / 1000 - 0.5
mid = [r for r in rows if start <= r[0] <= stop and r[2] > 0]
(t0, c0, _), (t1, c1, _) = mid[0], mid[-1]
print(f"tab in a call: {(c1 - c0) / tick / (t1 - t0) * 100:.1f} % of one core "
      f"over {t1 - t0:.1f} s ({int(mid[-1][2])} Chromium processes; PESQ etc. not scored here)")
PY
