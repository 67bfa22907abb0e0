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
. "$(dirname "$0")/cluster-lib.sh"

start_redis
URLS=(); PIDS=()
for n in $(seq "$NODES"); do
    start_node "n$n" --redis "$REDIS" --node-id "n$n"
    URLS+=("$NODE_URL"); PIDS+=("$NODE_PID")
done
join() { local IFS=,; echo "$*"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $NODES nodes, Redis on port $REDIS_PORT" >&2
"$BIN" bench sessions --server "$(join "${URLS[@]}")" --pid "$(join "${PIDS[@]}")" --redis "$REDIS" --count "$COUNT" "${@:4}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# What went wrong on the nodes, if anything.
grep -h ERROR "$WORK"/n*.err | tail -5 >&2 || true
