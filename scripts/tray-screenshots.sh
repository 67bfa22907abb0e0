#!/usr/bin/env bash
# The tray icon as a real panel draws it: Xvfb, openbox, a private D-Bus
# session bus, xfce4-panel with only its system tray plugin (a
# StatusNotifierItem host), a local server and the app signed in as alice.
# A headless bob calls and cancels (a missed call), the window is closed to
# the tray, the icon's menu is opened with a right click and shot, then bob
# calls again and the window comes back with its dialog (the icon's tooltip
# says so). Screenshots go to $OUT (default target/tray-screenshots).
# Needs: Xvfb, openbox, wmctrl, xdotool, xwd, convert, dbus-daemon, and
# xfce4-panel (apt-get install xfce4-panel).
#
#   scripts/tray-screenshots.sh [SOFTPHONE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=${1:-}
if [ -z "$bin" ]; then cargo build -q --bin softphone; bin=$target/debug/softphone; fi
out=${OUT:-$target/tray-screenshots}
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/buspid" ] && kill "$(cat "$work/buspid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export DISPLAY=${DISPLAY_NUM:-:97}
Xvfb "$DISPLAY" -screen 0 1280x900x24 -noreset >/dev/null 2>&1 & pids+=($!)
sleep 1
dbus-daemon --session --fork --print-address=3 --print-pid=4 3>"$work/bus" 4>"$work/buspid"
export DBUS_SESSION_BUS_ADDRESS=$(head -1 "$work/bus")
export XDG_CONFIG_HOME=$work/config
openbox >/dev/null 2>&1 & pids+=($!)
sleep 0.5
# One panel along the top with the system tray (it hosts StatusNotifierItems).
panel() { xfconf-query -c xfce4-panel -n "$@"; }
panel -p /panels -a -t int -s 1
panel -p /panels/panel-1/position -t string -s "p=6;x=0;y=0"
panel -p /panels/panel-1/size -t uint -s 32
panel -p /panels/panel-1/length -t uint -s 100
panel -p /panels/panel-1/plugin-ids -a -t int -s 1
panel -p /plugins/plugin-1 -t string -s systray
xfce4-panel >"$work/panel.log" 2>&1 & pids+=($!)
sleep 3
"$bin" server --listen 127.0.0.1:0 >"$work/server.log" 2>&1 & pids+=($!)
sleep 1
url="ws://$(grep -o '127.0.0.1:[0-9]*' "$work/server.log" | head -1)/"
echo x >"$work/token"
SOFTPHONE_HOME=$work/home "$bin" --server "$url" --peer-id alice --token-file "$work/token" \
  >"$work/app.log" 2>&1 & pids+=($!)
sleep 8
bob() { printf '%s\n' "$@" | timeout 20 "$bin" peer --server "$url" --id bob --token x >/dev/null 2>&1; }
bob "call alice" "sleep 3s" "cancel" "quit"
sleep 1
wmctrl -c softphone
sleep 2
xdotool mousemove 12 16 click 3
sleep 1.5
xwd -root | convert xwd:- -crop 360x160+0+0 "$out/tray-menu.png"
xdotool key Escape
bob "call alice" "sleep 6s" "cancel" "quit" & caller=$!
sleep 3.5
xwd -root | convert xwd:- -crop 960x860+0+0 -resize 75% "$out/tray-reopened-by-call.png"
wait "$caller"
grep -a "tray" "$work/app.log" | sed 's/\x1b\[[0-9;]*m//g'
echo "screenshots in $out"
