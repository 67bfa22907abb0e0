#!/bin/bash
# Usage: scripts/kamailio-compare.sh SERVER_BINARY [RATE] [SECONDS] [ROUNDS]
#
# CPU per call of our signaling server against Kamailio 5.6, a stateful SIP
# proxy over TCP, on the same machine and in the same minutes: ROUNDS rounds,
# each running Kamailio then ours, so a change in the machine's speed hits
# both (these machines are shared; never compare runs from different hours).
#
# - Kamailio (Debian's `kamailio`): tm + rr, record-routing every INVITE so
#   ACK and BYE pass through it too; sipp (Debian's `sip-tester`) is both the
#   caller (built-in `uac`: INVITE, 100, 180, 200, ACK, BYE, 200) and the
#   callee (`uas`), each over one TCP connection to the proxy.
# - Ours: `softphone bench setups` (invite, received, accept, hang-up; the
#   same four steps a call takes in SIP) through scripts/cpu-per-call.sh.
#
# CPU is utime+stime from /proc/PID/stat, summed over Kamailio's processes
# (it forks workers); sipp's and the bench's own CPU are not counted.
# Needs: kamailio, sip-tester (apt-get install kamailio sip-tester).
set -euo pipefail
BIN=$1; RATE=${2:-1000}; SECS=${3:-10}; ROUNDS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
PROXY_PORT=5860; UAS_PORT=5870

cat > "$WORK/kamailio.cfg" <<EOF
#!KAMAILIO
debug=0
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=tcp:127.0.0.1:$PROXY_PORT
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (has_totag()) {
        # sipp's built-in uas does not echo Record-Route, so in-dialog
        # requests come without a Route: send them on to the callee.
        if (!loose_route()) { \$du = "sip:127.0.0.1:$UAS_PORT;transport=tcp"; }
        t_relay();
        exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
    record_route();
    \$du = "sip:127.0.0.1:$UAS_PORT;transport=tcp";
    t_relay();
}
EOF

# Kamailio's CPU: the main process and every process it forked.
kam_cpu() {
    local total=0 pid
    for pid in $1 $(pgrep -P "$1"); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo $total
}

kamailio_round() {
    local calls=$((RATE * SECS))
    kamailio -DD -E -f "$WORK/kamailio.cfg" -Y "$WORK" -m 256 -M 64 2> "$WORK/kam.log" &
    local kam=$!
    sipp -sn uas -t t1 -i 127.0.0.1 -p $UAS_PORT -bg > /dev/null 2>&1 || true
    sleep 1
    local before; before=$(kam_cpu $kam)
    sipp -sn uac -t t1 -i 127.0.0.1 -p 0 "127.0.0.1:$PROXY_PORT" -r "$RATE" -m "$calls" \
        -trace_stat -stf "$WORK/uac.csv" -fd 60 > /dev/null 2>&1 || true
    local after; after=$(kam_cpu $kam)
    local ok; ok=$(tail -1 "$WORK/uac.csv" | awk -F';' '{print $16}')  # SuccessfulCall(C)
    pkill -f "sipp -sn uas" || true
    kill $kam; wait $kam 2>/dev/null || true
    python3 -c "
ticks=$after-$before; ok=int('$ok' or 0)
print(f'kamailio cpu_ticks={ticks} completed={ok} us_per_call={ticks/$TICK/max(ok,1)*1e6:.1f}')"
}

for round in $(seq "$ROUNDS"); do
    echo "round $round"
    kamailio_round
    echo -n "softphone "; "$HERE/cpu-per-call.sh" "$BIN" "$BIN" "$RATE" "${SECS}s" 2>/dev/null
done
