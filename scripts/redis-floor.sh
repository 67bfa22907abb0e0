#!/bin/bash
# Usage: scripts/redis-floor.sh BINARY [RATE] [SECONDS]
#
# What Redis alone spends on a cluster call (docs/scale-out.md): the floor
# under the cluster's CPU per call that no node-side work can lower.
#
# 1. Starts a redis-server on a free port and two release nodes (n1, n2)
#    joined to it, and captures with `redis-cli monitor` the four EVALSHA
#    of one call of a short `bench setups` (caller on n1, callee on n2).
# 2. Stops the nodes, empties the keys (the loaded scripts stay) and
#    replays that call with scripts/redis-floor.py: RATE calls a second
#    (default 1000) for SECONDS (default 20), one request at a time per
#    step as the nodes send them, then every step pipelined.
# Prints redis-server's CPU per call for both. Every process it starts is
# stopped at exit.
set -euo pipefail
BIN=$1; RATE=${2:-1000}; SECONDS_=${3:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/cluster-lib.sh"

start_redis
URLS=(); NODE_PIDS=()
for n in n1 n2; do
    start_node "$n" --redis "$REDIS" --node-id "$n"
    URLS+=("$NODE_URL"); NODE_PIDS+=("$NODE_PID")
done

redis-cli -p "$REDIS_PORT" monitor > "$WORK/monitor" &
MONITOR=$!
STARTED+=("$MONITOR")
"$BIN" bench setups --rate 20 --duration 1s --server "${URLS[0]},${URLS[1]}" > /dev/null 2> "$WORK/bench.err"
sleep 0.5
kill "$MONITOR"
# One call's own four requests (not the commands its scripts ran, tagged
# "lua"); the first calls also carry the retries that loaded the scripts.
grep -v '\[0 lua\]' "$WORK/monitor" | grep '"EVALSHA"' > "$WORK/evalsha"
CALL_ID=$(grep -o '^[^"]*"EVALSHA" "[0-9a-f]*" "0" "[0-9a-f]*-[0-9]*"' "$WORK/evalsha" \
    | sed 's/.*"\([^"]*\)"$/\1/' | uniq -c | awk '$1 == 4 { print $2 }' | tail -1)
grep -F "\"$CALL_ID\"" "$WORK/evalsha" > "$WORK/call"
for pid in "${NODE_PIDS[@]}"; do kill -INT "$pid"; wait "$pid" || true; done
redis-cli -p "$REDIS_PORT" flushall > /dev/null
echo "call $CALL_ID: $(wc -l < "$WORK/call") requests; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 "$HERE/redis-floor.py" "$REDIS_PORT" "$REDIS_PID" "$WORK/call" "$RATE" "$SECONDS_"
redis-cli -p "$REDIS_PORT" flushall > /dev/null
python3 "$HERE/redis-floor.py" "$REDIS_PORT" "$REDIS_PID" "$WORK/call" "$RATE" "$SECONDS_" pipelined
