#!/usr/bin/env bash
# Two desktop apps talk through the embedded default server, on the
# PulseAudio rig, through the app's real cpal path (docs/media.md,
# "Two apps on the rig").
#
#   scripts/two-app-voice-check.sh [RUNS]     (default 3)
#
# App A (alice) hosts the server on ws://127.0.0.1:7878 (nothing else may
# listen there), its microphone `micA`, its speaker `discard`; app B (bob)
# plays into `spkB`. Both run under Xvfb :99 with a HOME of their own. A
# calls B by typing into the dial form, B accepts with Enter in the incoming
# dialog; then RUNS times the test sentence is spoken into `mouthA` while
# `room.monitor` is recorded, and scripts/mouth-to-ear.py gives the delay.
# Screenshots of both call screens land in $OUT (default /tmp/two-app-voice),
# the one with A's microphone meter fullest as best.png. The safety codes
# come from both apps' logs ("voice call started").
set -euo pipefail

RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/two-app-voice}
SPEECH=${SPEECH:-$ROOT/crates/core/tests/data/speech-harvard-22k.wav}
export DISPLAY=${DISPLAY_NUM:-:99}
PIDS=()

log() { echo "two-app: $*" >&2; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

for p in xvfb xdotool; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >&2
done
command -v convert >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagemagick >&2
python3 -c "import numpy" 2>/dev/null || pip install -q numpy >&2

eval "$("$ROOT/scripts/voice-rig.sh" start)"

# SOFTPHONE_BIN names a built binary (a release build, say); without it
# the debug build is brought up to date.
if [[ -z ${SOFTPHONE_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --bin softphone >&2)
fi
BIN=${SOFTPHONE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/softphone}

if ! xdotool getdisplaygeometry >/dev/null 2>&1; then
    # -noreset: an X server resets when its last client leaves (the
    # readiness probe below), and a client connecting meanwhile fails
    # (the app's "XOpenDisplayFailed"; 14 of 300 back-to-back
    # connections failed without the flag, 0 with it).
    Xvfb "$DISPLAY" -screen 0 1600x900x24 -noreset >/dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done
fi

rm -rf "$OUT" && mkdir -p "$OUT/a" "$OUT/b"

screenshot() { xwd -root -display "$DISPLAY" | convert xwd:- -crop 1400x720+0+0 "$1"; }
# Prints the id of a window whose title matches $1, waiting up to 20 s.
wait_window() {
    local id
    for _ in $(seq 200); do
        id=$(xdotool search --name "$1" 2>/dev/null | head -1 || true)
        [[ -n $id ]] && { echo "$id"; return; }
        sleep 0.1
    done
    screenshot "$OUT/failed.png"
    log "no window named '$1' (screen: $OUT/failed.png)"
    return 1
}

# Starts one app signed in as $1, its folder under $OUT $2, extra env $3...
start_app() {
    local name=$1 dir=$OUT/$2
    shift 2
    (cd "$dir" && exec env HOME="$dir" XDG_CONFIG_HOME="$dir/.config" SOFTPHONE_HOME="$dir/sp" "$@" \
        "$BIN" --peer-id "$name" >"$dir/log" 2>&1) &
    PIDS+=($!)
}

start_app alice a PULSE_SOURCE=micA PULSE_SINK=discard
WIN_A=$(wait_window softphone)
grep -q "hosting one in-process" "$OUT/a/log" || { log "app A did not host the server"; exit 1; }
# The hosted server takes only tokens minted from its user's secret: two
# instances of one user share it (one data dir in real use; a HOME each
# here, so B gets a copy).
for _ in $(seq 50); do [[ -s $OUT/a/sp/data/server-secret ]] && break; sleep 0.1; done
mkdir -p "$OUT/b/sp/data"
install -m 600 "$OUT/a/sp/data/server-secret" "$OUT/b/sp/data/server-secret"
start_app bob b PULSE_SOURCE=discard.monitor PULSE_SINK=spkB
for _ in $(seq 100); do
    WIN_B=$(xdotool search --name 'softphone' | grep -vx "$WIN_A" | head -1 || true)
    [[ -n $WIN_B ]] && break
    sleep 0.1
done
[[ -n $WIN_B ]] || { log "app B has no window"; exit 1; }
xdotool windowmove "$WIN_B" 800 0
sleep 3 # both sign in

# A: click the dial form's peer id field (its place in A's 600x720 window:
# A shows the two-line "hosting" status bar); Enter places the call.
xdotool windowfocus --sync "$WIN_A"
xdotool mousemove --window "$WIN_A" 300 312 click 1
xdotool type --delay 40 bob
xdotool key Return
wait_window '^Incoming call from alice' >/dev/null
xdotool windowfocus --sync "$WIN_B"
xdotool key Return
for _ in $(seq 100); do
    grep -q "voice call started" "$OUT/a/log" && grep -q "voice call started" "$OUT/b/log" && break
    sleep 0.1
done
code() { grep -a "voice call started" "$1" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'safety_code=[0-9]*' | cut -d= -f2; }
CODE_A=$(code "$OUT/a/log")
CODE_B=$(code "$OUT/b/log")
log "safety codes: A $CODE_A, B $CODE_B"
sleep 2 # the jitter buffers fill

# Fraction of A's microphone meter that is lit in a screenshot.
meter() {
    convert "$1" -crop 270x6+215+458 rgb:- | python3 -c '
import sys, numpy as np
p = np.frombuffer(sys.stdin.buffer.read(), np.uint8).reshape(-1, 3).astype(int)
print(f"{np.mean((p[:, 2] > 200) & (p[:, 0] < 150)):.3f}")'
}

best=-1
for run in $(seq "$RUNS"); do
    parecord --device=room.monitor --channels=2 --rate=48000 --format=s16le --raw "$OUT/run$run.raw" &
    rec=$!
    sleep 0.5
    paplay --device=mouthA "$SPEECH" &
    play=$!
    # SHOTS screenshots a take (default 6; each costs a burst of CPU that
    # shows in the delay's figures on a busy machine: 1 for timing runs).
    for i in $(seq "${SHOTS:-6}"); do
        sleep 1
        shot=$OUT/run$run-$i.png
        screenshot "$shot"
        fill=$(meter "$shot")
        if python3 -c "import sys; sys.exit(not $fill > $best)"; then best=$fill; cp "$shot" "$OUT/best.png"; fi
    done
    wait "$play"
    sleep 1
    kill "$rec"
    wait "$rec" || true
    echo "run $run: $(python3 "$ROOT/scripts/mouth-to-ear.py" "$OUT/run$run.raw")  load $(cut -d' ' -f1-3 /proc/loadavg)"
done
# B hangs up (its window's Hang up button), so both log how the call went.
xdotool windowfocus --sync "$WIN_B"
xdotool mousemove --window "$WIN_B" 300 581 click 1
for _ in $(seq 50); do grep -q "voice call ended" "$OUT/b/log" && break; sleep 0.1; done
echo "B's end of the call: $(grep -a "voice call ended" "$OUT/b/log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g; s/.*voice call ended //')"
# The devices' shares of the delay (docs/media.md, "Where the delay goes").
for _ in $(seq 20); do grep -q "microphone closed" "$OUT/a/log" && break; sleep 0.1; done
devices() { grep -a "$2" "$1" | sed 's/\x1b\[[0-9;]*m//g; s/.*'"$2"' //' | paste -sd';' -; }
echo "A's microphone: $(devices "$OUT/a/log" "microphone closed")"
echo "B's speaker: $(devices "$OUT/b/log" "speaker closed")"
echo "safety codes: A $CODE_A, B $CODE_B ($([[ -n $CODE_A && $CODE_A == "$CODE_B" ]] && echo match || echo DIFFER))"
echo "best screenshot: $OUT/best.png (A's microphone meter $best lit)"
