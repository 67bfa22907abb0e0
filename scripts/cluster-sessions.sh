#!/bin/bash
# Usage: scripts/cluster-sessions.sh BINARY [COUNT] [NODES]
#
# Memory per idle session on each node of a cluster and in Redis
# (docs/scale-out.md): starts a redis-server on a free port and NODES
# (default 3) release nodes joined to it, then runs
#   BINARY bench sessions --server URL1,URL2,... --pid PID1,PID2,...
#          --redis redis://127.0.0.1:PORT/ --count COUNT
# (default 50,000; the bench spreads itself over worker processes and
# source addresses). Prints the load average before the run. Every process
# it starts is stopped at exit.
set -euo pipefail
BIN=$1; COUNT=${2:-50000}; NODES=${3:-3}
WORK=$(mktemp -d)
STARTED=()
cleanup() {
    for pid in "${STARTED[@]}"; do kill -9 "$pid" 2>/dev/null || true; { wait "$pid"; } 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile "$WORK/redis.log" &
STARTED+=("$!")
for _ in $(seq 100); do [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
REDIS="redis://127.0.0.1:$PORT/"
URLS=(); PIDS=()
for n in $(seq "$NODES"); do
    "$BIN" server --listen 127.0.0.1:0 --redis "$REDIS" --node-id "n$n" > "$WORK/n$n.out" 2> "$WORK/n$n.err" &
    PIDS+=("$!"); STARTED+=("$!")
    for _ in $(seq 100); do grep -q "listening on" "$WORK/n$n.out" && break; sleep 0.1; done
    URL=$(sed -n 's/^listening on \(ws:\/\/[^ ]*\).*/\1/p' "$WORK/n$n.out" | head -1)
    if [ -z "$URL" ]; then echo "node n$n did not start:" >&2; cat "$WORK/n$n.err" >&2; exit 1; fi
    URLS+=("$URL/")
done
join() { local IFS=,; echo "$*"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $NODES nodes, Redis on port $PORT" >&2
"$BIN" bench sessions --server "$(join "${URLS[@]}")" --pid "$(join "${PIDS[@]}")" --redis "$REDIS" --count "$COUNT" "${@:4}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# What went wrong on the nodes, if anything.
grep -h ERROR "$WORK"/n*.err | tail -5 >&2 || true
