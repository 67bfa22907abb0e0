#!/usr/bin/env bash
# Regenerates the three tones embedded in the app (src/ringtone.rs) with sox.
# Run once by hand when changing them; the .ogg files are committed.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Ringback: North American ringback, 440 + 480 Hz, 2 s on, 4 s off.
sox -n -r 22050 -c 1 ringback.ogg synth 2 sine 440 sine 480 remix - gain -8 fade 0.02 2 0.02 pad 0 4
# Ringtone: two 0.4 s trills of 1300 + 1700 Hz, then 1.8 s of silence.
sox -n -r 22050 -c 1 "$tmp/burst.wav" synth 0.4 sine 1300 sine 1700 remix - tremolo 20 80 gain -6 fade 0.01 0.4 0.01
sox "$tmp/burst.wav" ringtone.ogg pad 0 0.2 repeat 1 pad 0 1.8
# Call waiting: two short 440 Hz beeps, then 4 s of silence (heard over a call).
sox -n -r 22050 -c 1 callwaiting.ogg synth 0.3 sine 440 gain -10 fade 0.02 0.3 0.02 pad 0 0.2 repeat 1 pad 0 4
