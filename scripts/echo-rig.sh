#!/usr/bin/env bash
# The echo rig in one command (docs/media.md, "The echo rig"): a laptop
# whose speaker leaks into its own microphone, for real, on the PulseAudio
# rig (scripts/voice-rig.sh), with no sound card.
#
#   scripts/echo-rig.sh [off|on|both|STAGES ...]    (default both: off, then on)
#
# App A (alice) is the real desktop app under Xvfb, through cpal: its
# microphone `micA` hears the room's left channel, its speaker `spkA` is a
# remap sink into that same channel at COUPLING_DB (default -18 dB). B (bob)
# is a file-fed headless peer: it sends $OUT/b-in.wav and writes what it
# hears to $OUT/<mode>/b-out.wav. A talker speaks $OUT/a-mouth.wav into
# `mouthA` (the room's left channel at full level). Both run against a real
# server (`softphone server`) on 127.0.0.1.
#
# The scene (48 kHz, from the moment B's voice starts): 0-16 s B talks
# alone (the echo B hears of itself), 16-32 s both talk (double talk),
# 32-48 s A talks alone. The score (`voice::echo_rig_score`) gives the
# echo's energy against B's speech over the call and once converged, and
# PESQ-WB of A's speech at B in double talk and alone. "off" writes
# echo_cancellation, noise_suppression and gain_control false into A's
# config; "on" runs the app's defaults; a list of stages from aec, ns and
# agc such as `aec,agc` runs those only (each stage's share of what the
# processing costs). CALL_WAITING=1 turns call waiting on in A's config
# and has a third peer (carol) call A 2 s into the call for 12 s: the
# call-waiting beeps, and how much of them B hears (docs/media.md, "The
# call-waiting beeps"). The apt-get installs are those of voice-rig.sh plus
# xvfb and xdotool. Needs a release build
# (`cargo build --release`; debug audio is too slow); SOFTPHONE_BIN
# overrides it.
set -euo pipefail

MODES=${*:-both}
[[ $MODES == both ]] && MODES="off on"
for mode in $MODES; do
    [[ $mode =~ ^(on|off|(aec|ns|agc)(,(aec|ns|agc))*)$ ]] || {
        echo "echo-rig: mode $mode: expected off, on, both, or stages from aec, ns, agc joined by commas" >&2
        exit 2
    }
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/echo-rig}
COUPLING_DB=${COUPLING_DB:--18}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SOFTPHONE_BIN:-$TARGET/release/softphone}
export DISPLAY=${DISPLAY_NUM:-:97}
PIDS=()
SPK_MODULE=

log() { echo "echo-rig: $*" >&2; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n $SPK_MODULE ]] && pactl unload-module "$SPK_MODULE" 2>/dev/null || true
}
trap cleanup EXIT

for p in xvfb xdotool; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >&2
done
eval "$("$ROOT/scripts/voice-rig.sh" start)"
[[ -x $BIN ]] || (cd "$ROOT" && cargo build --release --bin softphone >&2)

# A's speaker: into the room's left channel, which is A's microphone, at
# the coupling (PulseAudio's software volume is cubic: 65536 * 10^(dB/60)).
for m in $(pactl list short modules | awk '/sink_name=spkA /{print $1}'); do pactl unload-module "$m"; done
SPK_MODULE=$(pactl load-module module-remap-sink sink_name=spkA master=room channels=1 \
    master_channel_map=front-left channel_map=mono)
pactl set-sink-volume spkA "$(python3 -c "print(round(65536 * 10 ** ($COUPLING_DB / 60)))")"

# The talkers: B the test sentence (crates/core/tests/data), A three other sentences
# in another voice, each looped to 32 s; silence around them.
mkdir -p "$OUT"
speech_b=$ROOT/crates/core/tests/data/speech-harvard-22k.wav
[[ -f $OUT/a-clip.wav ]] || espeak-ng -v en-us+f3 -s 150 -w "$OUT/a-clip.wav" \
    "A large size in stockings is hard to sell. The boy was there when the sun rose. A rod is used to catch pink salmon."
sox "$speech_b" -r 48000 -c 1 -b 16 "$OUT/b-in.wav" repeat 5 trim 0 32 pad 0 16
sox "$OUT/a-clip.wav" -r 48000 -c 1 -b 16 "$OUT/a-mouth.wav" repeat 5 trim 0 32 pad 16 0

if ! xdotool getdisplaygeometry >/dev/null 2>&1; then
    # -noreset: an X server resets when its last client leaves (the
    # readiness probe below), and a client connecting meanwhile fails
    # (the app's "XOpenDisplayFailed"; 14 of 300 back-to-back
    # connections failed without the flag, 0 with it).
    Xvfb "$DISPLAY" -screen 0 1280x800x24 -noreset >/dev/null 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done
fi

"$BIN" server --listen 127.0.0.1:0 >"$OUT/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q '127.0.0.1:[0-9]' "$OUT/server.log" && break; sleep 0.1; done
PORT=$(grep -ao '127.0.0.1:[0-9]*' "$OUT/server.log" | head -1 | cut -d: -f2)
SERVER=ws://127.0.0.1:$PORT/
echo x >"$OUT/token"

# One call: A (the app, processing $1) answers B's call; B sends b-in.wav
# while the talker speaks a-mouth.wav into A's microphone.
call() {
    local mode=$1 dir=$OUT/$1
    rm -rf "$dir" && mkdir -p "$dir/home/config"
    local aec=true ns=true agc=true waiting=false
    if [[ $mode != on ]]; then
        aec=false ns=false agc=false
        [[ ,$mode, == *,aec,* ]] && aec=true
        [[ ,$mode, == *,ns,* ]] && ns=true
        [[ ,$mode, == *,agc,* ]] && agc=true
    fi
    [[ -n ${CALL_WAITING:-} ]] && waiting=true
    echo "{\"echo_cancellation\": $aec, \"noise_suppression\": $ns, \"gain_control\": $agc, \"call_waiting\": $waiting}" \
        >"$dir/home/config/config.json"
    SOFTPHONE_HOME=$dir/home PULSE_SOURCE=micA PULSE_SINK=spkA "$BIN" --server "$SERVER" \
        --peer-id alice --token-file "$OUT/token" >"$dir/app.log" 2>&1 &
    local app=$!
    PIDS+=($app)
    sleep 4 # A signs in
    printf 'call alice\nwait accepted --timeout 30s\nsleep 52\nhangup\nsleep 1\nquit\n' >"$dir/b.script"
    "$BIN" peer --server "$SERVER" --id bob --token x --script "$dir/b.script" \
        --audio-in "$OUT/b-in.wav" --audio-out "$dir/b-out.wav" >"$dir/b.log" 2>&1 &
    local peer=$!
    PIDS+=($peer)
    local win=
    for _ in $(seq 200); do
        win=$(xdotool search --name '^Incoming call from bob' 2>/dev/null | head -1 || true)
        [[ -n $win ]] && break
        sleep 0.1
    done
    [[ -n $win ]] || { log "A never rang (logs in $dir)"; return 1; }
    xdotool windowfocus --sync "$win" key Return
    for _ in $(seq 100); do grep -q '"started"' "$dir/b.log" && break; sleep 0.05; done
    grep -q '"started"' "$dir/b.log" || { log "B's voice did not start (logs in $dir)"; return 1; }
    if [[ -n ${CALL_WAITING:-} ]]; then
        printf 'sleep 2\ncall alice\nsleep 12\ncancel\nsleep 1\nquit\n' >"$dir/c.script"
        "$BIN" peer --server "$SERVER" --id carol --token x --script "$dir/c.script" >"$dir/c.log" 2>&1 &
        PIDS+=($!)
    fi
    paplay --device=mouthA "$OUT/a-mouth.wav"
    wait "$peer" || true
    kill "$app" 2>/dev/null || true
    wait "$app" 2>/dev/null || true
    log "$mode: $(grep -ao 'voice[^{]*stopped.*' "$dir/b.log" | tail -1)"
    # The ALSA PulseAudio plugin's stream errors (docs/media.md): a flood
    # of them garbles A's microphone, and the score's correlation shows it.
    log "$mode: A's audio stream errors: $(grep -ac 'audio stream error' "$dir/app.log" || true)"
}

for mode in $MODES; do
    call "$mode"
done
[[ -n ${NO_SCORE:-} ]] && exit 0
(cd "$ROOT" && ECHO_RIG_DIR=$OUT ECHO_RIG_MODES="$MODES" cargo test -q -p softphone-core --lib \
    voice::echo_rig_score -- --ignored --nocapture 2>&1 | grep -v '^running\|^test result\|^$')
