#!/usr/bin/env bash
# The virtual PulseAudio rig for measuring voice through real cpal devices
# on a machine without a sound card (docs/media.md, "The PulseAudio rig").
#
#   scripts/voice-rig.sh [start]   install (idempotent), start, print the env
#   scripts/voice-rig.sh stop      unload the devices and stop the daemon
#   scripts/voice-rig.sh env       print the env of a running rig
#
# Devices: null sink `room` (2 channels, 48 kHz); `mouthA` plays into its
# left channel and `micA` hears that left channel (phone A's microphone);
# `spkB` plays into its right channel (phone B's speaker); `discard` is a
# sink nobody records (for the speaker of a phone that must not be heard).
# Record `room.monitor` as 2 channels: left is the mouth, right the ear.
#
# Start prints `export XDG_RUNTIME_DIR=...`: eval it, e.g.
#   eval "$(scripts/voice-rig.sh)"
set -euo pipefail

# Where the rig keeps its runtime dir, so `stop` and `env` find it again.
STATE_FILE=${VOICE_RIG_STATE:-/tmp/voice-rig.runtime-dir}
PACKAGES=(pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox)

log() { echo "voice-rig: $*" >&2; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

print_env() {
    echo "export XDG_RUNTIME_DIR=$1"
    echo "# phone A: PULSE_SOURCE=micA PULSE_SINK=discard   phone B: PULSE_SINK=spkB"
    echo "# speak:   paplay --device=mouthA speech.wav"
    echo "# record:  parecord --device=room.monitor --channels=2 --rate=48000 --format=s16le --raw out.raw"
}

running_dir() {
    [[ -f $STATE_FILE ]] || return 1
    local dir
    dir=$(cat "$STATE_FILE")
    XDG_RUNTIME_DIR=$dir pactl info >/dev/null 2>&1 || return 1
    echo "$dir"
}

start() {
    install_packages
    local dir
    if dir=$(running_dir); then
        log "already running"
        print_env "$dir"
        return
    fi
    dir=$(mktemp -d /tmp/voice-rig.XXXXXX)
    export XDG_RUNTIME_DIR=$dir
    pulseaudio -D --exit-idle-time=-1 -n --load=module-native-protocol-unix >&2
    for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
    pactl load-module module-null-sink sink_name=room channels=2 rate=48000 >/dev/null
    pactl load-module module-remap-sink sink_name=mouthA master=room channels=1 \
        master_channel_map=front-left channel_map=mono >/dev/null
    pactl load-module module-remap-source source_name=micA master=room.monitor channels=1 \
        master_channel_map=front-left channel_map=mono >/dev/null
    pactl load-module module-remap-sink sink_name=spkB master=room channels=1 \
        master_channel_map=front-right channel_map=mono >/dev/null
    pactl load-module module-null-sink sink_name=discard channels=1 rate=48000 >/dev/null
    echo "$dir" >"$STATE_FILE"
    log "started (sinks: $(pactl list short sinks | cut -f2 | tr '\n' ' '))"
    print_env "$dir"
}

stop() {
    local dir
    if dir=$(running_dir); then
        XDG_RUNTIME_DIR=$dir pulseaudio --kill || true
        # The daemon exits asynchronously and touches its runtime dir on the
        # way out: wait for it before removing the dir.
        for _ in $(seq 50); do
            XDG_RUNTIME_DIR=$dir pactl info >/dev/null 2>&1 || break
            sleep 0.1
        done
        sleep 0.2
        rm -rf "$dir"
        log "stopped"
    else
        log "not running"
    fi
    rm -f "$STATE_FILE"
}

case ${1:-start} in
start) start ;;
stop) stop ;;
env) dir=$(running_dir) || { log "not running"; exit 1; }; print_env "$dir" ;;
*) echo "usage: $0 [start|stop|env]" >&2; exit 2 ;;
esac
