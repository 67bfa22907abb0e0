#!/bin/bash
# Usage: scripts/cluster-bench.sh BINARY [RATE] [DURATION]
#
# CPU per completed call of a two-node cluster against one single node, on
# this machine, side by side (docs/scale-out.md). BINARY is a release build
# of `softphone`; it is the servers and the load generator both.
#
# 1. One single node (no Redis): `bench setups --rate RATE --duration
#    DURATION --server URL`.
# 2. A redis-server on a free port and two nodes joined to it; the same
#    bench with `--server URL1,URL2`, so every call's caller is on one node
#    and its callee on the other.
#
# For each it reads the CPU time (utime + stime, fields 14 and 15 of
# /proc/PID/stat) of every server process (nodes and redis-server) before
# and after the bench, and prints the CPU per completed call, the bench's
# p99 invite -> invitation delivered and invite -> accepted, the load
# average when the run started, and which Redis commands a call cost
# (INFO commandstats, reset before the cluster run). Every process it
# starts is stopped at exit.
#
# Optional environment: SERVER_ENV, one VAR=VALUE set for the servers only
# (TOKIO_WORKER_THREADS=1: one worker thread per server); BENCH_BIN, a
# load generator other than BINARY (to compare two server builds under
# the same bench); REDIS_UNIX=1, the nodes reach Redis over a Unix socket
# instead of TCP on loopback.
set -euo pipefail
BIN=$1; RATE=${2:-1000}; DUR=${3:-20s}
TICK=$(getconf CLK_TCK)
. "$(dirname "$0")/cluster-lib.sh"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure LABEL SERVERS PIDS...: runs the bench against SERVERS (a comma
# list), prints one JSON line of figures.
measure() {
    local label=$1 servers=$2; shift 2
    local pids=("$@") before=() after=()
    local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
    for pid in "${pids[@]}"; do before+=("$(cpu "$pid")"); done
    if ! "${BENCH_BIN:-$BIN}" bench setups --rate "$RATE" --duration "$DUR" --server "$servers" --json \
        > "$WORK/$label.json" 2> "$WORK/$label.err"; then
        echo "the $label bench failed:" >&2; tail -5 "$WORK/$label.err" >&2; exit 1
    fi
    for pid in "${pids[@]}"; do after+=("$(cpu "$pid")"); done
    python3 - "$label" "$TICK" "$load" "$WORK/$label.json" "${before[*]}" "${after[*]}" <<'PY'
import json, sys
label, tick, load, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
before, after = [int(x) for x in sys.argv[5].split()], [int(x) for x in sys.argv[6].split()]
run = json.load(open(path))[-1]
done = run["completed"]
per_process = [(a - b) / tick for a, b in zip(after, before)]
print(json.dumps({
    "label": label, "load_average": load, "completed": done, "failed": run["failed"],
    "failures": run["failures"], "cpu_s": per_process,
    "cpu_us_per_call": [round(s / max(done, 1) * 1e6, 1) for s in per_process],
    "cpu_us_per_call_total": round(sum(per_process) / max(done, 1) * 1e6, 1),
    "p99_delivered_us": run["invite_to_delivered_us"]["p99"],
    "p99_accepted_us": run["invite_to_accepted_us"]["p99"],
    "p99_lag_us": run["schedule_lag_us"]["p99"],
}))
PY
}

echo "rate $RATE/s for $DUR; $(nproc) cores; $("$BIN" --version 2>/dev/null || echo softphone)" >&2

start_node single
SINGLE_PID=$NODE_PID SINGLE_URL=$NODE_URL
measure single "$SINGLE_URL" "$SINGLE_PID" > "$WORK/single.line"
kill -INT "$SINGLE_PID"; wait "$SINGLE_PID" || true

start_redis
start_node n1 --redis "$REDIS" --node-id n1
N1_PID=$NODE_PID N1_URL=$NODE_URL
start_node n2 --redis "$REDIS" --node-id n2
N2_PID=$NODE_PID N2_URL=$NODE_URL
redis-cli -p "$REDIS_PORT" config resetstat > /dev/null
measure cluster "$N1_URL,$N2_URL" "$N1_PID" "$N2_PID" "$REDIS_PID" > "$WORK/cluster.line"
redis-cli -p "$REDIS_PORT" info commandstats > "$WORK/commandstats"

python3 - "$WORK/single.line" "$WORK/cluster.line" "$WORK/commandstats" <<'PY'
import json, sys
single, cluster = (json.loads(open(p).read()) for p in sys.argv[1:3])
# What Redis did per completed call: cmdstat_NAME:calls=N,usec=U,...
done = max(cluster["completed"], 1)
stats = []
for line in open(sys.argv[3]):
    if line.startswith("cmdstat_"):
        name, fields = line.strip()[len("cmdstat_"):].split(":", 1)
        f = dict(kv.split("=") for kv in fields.split(","))
        stats.append((int(f["usec"]), name, int(f["calls"])))
stats.sort(reverse=True)
for r, names in ((single, ["node"]), (cluster, ["node 1", "node 2", "redis-server"])):
    parts = ", ".join(f"{n} {us} µs" for n, us in zip(names, r["cpu_us_per_call"]))
    print(f'{r["label"]:>8}: {r["completed"]} completed, {r["failed"]} failed {r["failures"] or ""}; '
          f'CPU per call {r["cpu_us_per_call_total"]} µs ({parts}); '
          f'p99 invite->delivered {r["p99_delivered_us"]} µs, invite->accepted {r["p99_accepted_us"]} µs, '
          f'lag p99 {r["p99_lag_us"]} µs; load average at start {r["load_average"]}')
ratio = cluster["cpu_us_per_call_total"] / max(single["cpu_us_per_call_total"], 1e-9)
print(f"CPU per call, cluster / single: {ratio:.2f}")
print("Redis commands per completed call (count, time inside Redis): " + ", ".join(
    f"{name} {calls / done:.2f} x {usec / done:.1f} µs" for usec, name, calls in stats[:8]))
PY
