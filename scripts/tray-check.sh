#!/usr/bin/env bash
# The window closed to the tray and brought back by a call, for real: Xvfb,
# openbox (to send the window's close button), a private D-Bus session bus
# with a minimal StatusNotifierWatcher (crates/app/examples/sni_watcher.rs; no panel
# draws the icon), a local server, the app signed in as alice, then a
# headless bob calling. Screenshots go to $OUT (default target/tray-check).
# Needs: Xvfb, openbox, wmctrl, xwd, convert, dbus-daemon.
#
#   scripts/tray-check.sh            # with a tray host: closing hides, a call reopens
#   NO_TRAY=1 scripts/tray-check.sh  # without: closing quits
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bin softphone --example sni_watcher
target=${CARGO_TARGET_DIR:-target}
bin=$target/debug/softphone
out=${OUT:-$target/tray-check}
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
export DISPLAY=${DISPLAY_NUM:-:98}
Xvfb "$DISPLAY" -screen 0 1280x900x24 -noreset >/dev/null 2>&1 & pids+=($!)
sleep 1
openbox >/dev/null 2>&1 & pids+=($!)
dbus-daemon --session --nofork --print-address >"$work/bus" 2>/dev/null & pids+=($!)
sleep 0.5
export DBUS_SESSION_BUS_ADDRESS=$(head -1 "$work/bus")
"$bin" server --listen 127.0.0.1:0 >"$work/server.log" 2>&1 & pids+=($!)
sleep 1
port=$(grep -o '127.0.0.1:[0-9]*' "$work/server.log" | head -1 | cut -d: -f2)
if [ -z "${NO_TRAY:-}" ]; then
  "$target/debug/examples/sni_watcher" >"$work/watcher.log" 2>&1 & pids+=($!)
  sleep 0.5
fi
echo x >"$work/token"
SOFTPHONE_HOME=$work/home "$bin" --server "ws://127.0.0.1:$port/" --peer-id alice \
  --token-file "$work/token" >"$work/app.log" 2>&1 & app=$!; pids+=($app)
sleep 6
shot() { xwd -root | convert xwd:- -crop 620x760+330+70 "$out/$1"; }
shot before-close.png
wmctrl -c softphone
sleep 2
if ! kill -0 "$app" 2>/dev/null; then
  echo "closing the window quit the app (no tray host)"; grep -a "tray host" "$work/app.log" || true; exit 0
fi
echo "window closed, app running: $(wmctrl -l | wc -l) windows"
( echo "call alice"; sleep 8 ) | timeout 10 "$bin" peer --server "ws://127.0.0.1:$port/" --id bob --token x >/dev/null 2>&1 &
sleep 4
wmctrl -l
shot reopened-by-call.png
grep -a "tray\|showing the window" "$work/app.log" | sed 's/\x1b\[[0-9;]*m//g'
echo "screenshots in $out"
