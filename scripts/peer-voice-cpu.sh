#!/usr/bin/env bash
# A client's CPU for one voice call, with the microphone's processing on
# or off (docs/media.md, "Client CPU with the processing on").
#
#   scripts/peer-voice-cpu.sh on|off [SECONDS] [SPEECH.wav]   (default 40 s)
#
# A real server on 127.0.0.1:0; bob (`softphone peer --auto accept`) sends
# and hears speech; alice calls him with `--audio-in SPEECH --audio-out ...
# --audio-processing MODE`. Alice's CPU (utime+stime from /proc/PID/stat)
# is read when her voice starts and SECONDS later: the whole process,
# Opus both ways, encryption, the jitter buffer, WAV files, the WebSocket.
# The speech is looped (sox) to outlast the call. Needs a release build
# (SOFTPHONE_BIN overrides it).
set -euo pipefail
MODE=${1:?usage: $0 on|off [SECONDS] [SPEECH.wav]}
SECONDS_CALL=${2:-40}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SPEECH=${3:-$ROOT/crates/core/tests/data/speech-harvard-22k.wav}
BIN=${SOFTPHONE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/softphone}
TICK=$(getconf CLK_TCK)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Speech for the whole call, at the devices' rate (no resampling on the way in).
sox "$SPEECH" -r 48000 -c 1 -b 16 "$WORK/speech.wav" repeat $((SECONDS_CALL / 7 + 2))
SPEECH=$WORK/speech.wav
"$BIN" server --listen 127.0.0.1:0 >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q '127.0.0.1:[0-9]' "$WORK/server.log" && break; sleep 0.1; done
URL=ws://127.0.0.1:$(grep -ao '127.0.0.1:[0-9]*' "$WORK/server.log" | head -1 | cut -d: -f2)/
"$BIN" peer --server "$URL" --id bob --token x --auto accept --audio-in "$SPEECH" \
    --audio-out "$WORK/bob.wav" >"$WORK/bob.log" 2>&1 &
PIDS+=($!)
sleep 1
mkfifo "$WORK/commands"
"$BIN" peer --server "$URL" --id alice --token x --audio-in "$SPEECH" --audio-out "$WORK/alice.wav" \
    --audio-processing "$MODE" <"$WORK/commands" >"$WORK/alice.log" 2>&1 &
ALICE=$!
PIDS+=($ALICE)
exec 3>"$WORK/commands"
echo "call bob" >&3
for _ in $(seq 100); do grep -q '"started"' "$WORK/alice.log" && break; sleep 0.1; done
grep -q '"started"' "$WORK/alice.log" || { echo "alice's voice did not start" >&2; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$ALICE/stat"; }
before=$(ticks)
sleep "$SECONDS_CALL"
after=$(ticks)
printf 'hangup\nquit\n' >&3
exec 3>&-
wait "$ALICE" || true
python3 -c "
ms = ($after - $before) * 1000 / $TICK
print(f'processing $MODE: {ms:.0f} ms of CPU over $SECONDS_CALL s of call = {ms / ($SECONDS_CALL * 10):.2f} % of a core')"
