#!/usr/bin/env python3
"""Measures how long an invitation takes to ring in the desktop app.

From the moment a headless peer (bob) is told to `call alice` to the moment
alice's app has shown the incoming-call dialog and started the ringtone (its
`softphone::latency` log line, stamped in Unix microseconds), over N calls.
Each call is canceled once it rang. Needs an X display (Xvfb works) and a
release build:

    cargo build --release
    Xvfb :99 -screen 0 1024x768x24 &
    DISPLAY=:99 python3 scripts/ring-latency.py target/release/softphone 20
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/softphone"
calls = int(sys.argv[2]) if len(sys.argv) > 2 else 20
home = tempfile.mkdtemp(prefix="softphone-latency-")

server = subprocess.Popen([binary, "server", "--listen", "127.0.0.1:0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
url = server.stdout.readline().split()[-1]

app_log_path = os.path.join(home, "app.log")
app_log = open(app_log_path, "w")
app = subprocess.Popen([binary, "--server", url, "--peer-id", "alice"],
                       env=dict(os.environ, SOFTPHONE_HOME=home, RUST_LOG="info", NO_COLOR="1"),
                       stdout=app_log, stderr=app_log)
peer = subprocess.Popen([binary, "peer", "--server", url, "--id", "bob"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def command(line):
    """Sends one script line to the peer and returns its result line."""
    peer.stdin.write(line + "\n")
    peer.stdin.flush()
    while True:
        out = json.loads(peer.stdout.readline())
        if "command" in out:
            return out


def rang_at(call_id, timeout=10.0):
    """The Unix time the app logged for `call_id`, waiting for the line."""
    pattern = re.compile(r"call_id=" + re.escape(call_id) + r" unix_us=(\d+)")
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(app_log_path) as log:
            match = pattern.search(log.read())
        if match:
            return int(match.group(1)) / 1e6
        time.sleep(0.002)
    raise SystemExit(f"the app never rang for {call_id}; see {app_log_path}")


try:
    # The app signs in at start; wait until alice is online.
    deadline = time.time() + 30
    while not command("presence alice").get("online", {}).get("alice"):
        if time.time() > deadline:
            raise SystemExit(f"alice never came online; see {app_log_path}")
        time.sleep(0.2)
    samples = []
    for i in range(calls):
        sent = time.time()
        result = command(f"call alice --channel latency-{i}")
        call_id = result["call_id"]
        samples.append((rang_at(call_id) - sent) * 1000)
        command("cancel")
        time.sleep(0.3)
    samples.sort()
    print(f"{calls} calls, invite sent -> dialog shown + ringtone started (ms):")
    print("  " + " ".join(f"{s:.1f}" for s in samples))
    print(f"  median {statistics.median(samples):.1f}  mean {statistics.mean(samples):.1f}"
          f"  p90 {samples[int(len(samples) * 0.9) - 1]:.1f}  max {samples[-1]:.1f}")
finally:
    for process in (peer, app, server):
        process.terminate()
    for process in (peer, app, server):
        process.wait(timeout=10)
