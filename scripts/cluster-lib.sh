# Sourced by the cluster scripts (cluster-bench.sh, cluster-sessions.sh,
# redis-floor.sh): a work folder, the processes they start (all stopped at
# exit), a Redis on a free port and nodes joined to it. Needs `set -euo
# pipefail` and BIN (the softphone binary) set by the script.

WORK=$(mktemp -d)
STARTED=()
cleanup() {
    for pid in "${STARTED[@]}"; do kill -9 "$pid" 2>/dev/null || true; { wait "$pid"; } 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_redis: a redis-server with no persistence on a free port, and on
# a Unix socket in WORK; sets REDIS_PID, REDIS_PORT and REDIS, the URL the
# nodes are given: the TCP port's, or with REDIS_UNIX=1 the socket's.
start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --unixsocket "$WORK/redis.sock" --unixsocketperm 700 \
        --save "" --appendonly no --logfile "$WORK/redis.log" &
    REDIS_PID=$!
    STARTED+=("$REDIS_PID")
    for _ in $(seq 100); do [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
    REDIS="redis://127.0.0.1:$REDIS_PORT/"
    if [ -n "${REDIS_UNIX:-}" ]; then REDIS="unix://$WORK/redis.sock"; fi
}

# start_node NAME FLAGS...: a server on a free port (SERVER_ENV, one
# VAR=VALUE, set for it if given); sets NODE_PID and NODE_URL.
start_node() {
    local name=$1; shift
    env ${SERVER_ENV:+"$SERVER_ENV"} "$BIN" server --listen 127.0.0.1:0 "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    NODE_PID=$!
    STARTED+=("$NODE_PID")
    for _ in $(seq 100); do grep -q "listening on" "$WORK/$name.out" && break; sleep 0.1; done
    NODE_URL=$(sed -n 's/^listening on \(ws:\/\/[^ ]*\).*/\1/p' "$WORK/$name.out" | head -1)
    if [ -z "$NODE_URL" ]; then echo "$name did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1; fi
    NODE_URL="$NODE_URL/"
}
