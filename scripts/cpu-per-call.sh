#!/bin/bash
# Usage: scripts/cpu-per-call.sh SERVER_BINARY BENCH_BINARY [RATE] [DURATION]
# SERVER_ENV="NAME=VALUE ..." sets environment variables for the server only
# (e.g. SERVER_ENV=TOKIO_WORKER_THREADS=1).
# Starts SERVER_BINARY's server on 127.0.0.1:0, runs `bench setups` against it
# (the bench from BENCH_BINARY), and prints the server's CPU time per
# completed call from /proc/PID/stat (utime+stime, fields 14 and 15).
set -euo pipefail
BIN=$1; BENCH=$2; RATE=${3:-1000}; DUR=${4:-20s}
TICK=$(getconf CLK_TCK)
OUT=$(mktemp)
env ${SERVER_ENV:-} "$BIN" server --listen 127.0.0.1:0 > "$OUT" 2>/dev/null &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$OUT" && break; sleep 0.1; done
URL=$(sed -n 's/^listening on \(ws:\/\/[^ ]*\).*/\1/p' "$OUT" | head -1)
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }
B=$(cpu)
J=$("$BENCH" bench setups --rate "$RATE" --duration "$DUR" --server "$URL" --json)
A=$(cpu)
kill -INT $PID; wait $PID || true
rm -f "$OUT"
python3 - "$B" "$A" "$TICK" "$J" <<'PY'
import json, sys
b, a, tick, j = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
def find(d, key):
    if isinstance(d, dict):
        for k, v in d.items():
            if k == key: return v
            r = find(v, key)
            if r is not None: return r
    if isinstance(d, list):
        for v in d:
            r = find(v, key)
            if r is not None: return r
    return None
done = find(j, "completed"); failed = find(j, "failed")
cpu_s = (a - b) / tick
acc = find(j, "invite_to_accepted_us") or {}
print(f"cpu_ticks={a-b} cpu_s={cpu_s:.2f} completed={done} failed={failed} us_per_call={cpu_s/done*1e6:.1f} accepted_p50_us={acc.get('p50')} accepted_p99_us={acc.get('p99')}")
PY
