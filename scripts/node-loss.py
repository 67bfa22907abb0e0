#!/usr/bin/env python3
"""Node loss, measured (docs/scale-out.md): how long from `kill -9` of a
node to the other party's event, mid-call and mid-ring.

Usage: scripts/node-loss.py BINARY [--heartbeat-ttl 5s] [--offline-grace 10s]

Starts a redis-server on a free port and two nodes joined to it, then:

- mid-call: alice (`softphone peer`, on node 1 only) calls bob (on node 2,
  `--auto accept`); once alice has `accepted`, node 1 is killed with
  SIGKILL; the time until bob prints `hung_up` is the figure.
- mid-ring: node 1 is started again; carol (on node 1) calls dave (on
  node 2, who lets it ring); once dave has `invitation_received`, node 1 is
  killed; the time until dave's invitation ends (`invitation_failure`, or
  `invitation_canceled`) is the figure.

The expected figure is about the heartbeat TTL (when the other node notices)
plus the offline grace (how long a disconnected party may come back). Each
line the peers print is time-stamped as it is read. Every process started
here is killed at exit.
"""

import argparse
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

STARTED = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, **kw):
    proc = subprocess.Popen(args, **kw)
    STARTED.append(proc)
    return proc


def start_node(binary, name, redis, flags, work):
    out = open(os.path.join(work, f"{name}.out"), "w+")
    err = open(os.path.join(work, f"{name}.err"), "w")
    cmd = [binary, "server", "--listen", "127.0.0.1:0", "--redis", redis, "--node-id", name] + flags
    proc = spawn(cmd, stdout=out, stderr=err, env={**os.environ, "RUST_LOG": "warn"})
    for _ in range(100):
        out.seek(0)
        for line in out:
            if line.startswith("listening on "):
                return proc, line.split()[2] + "/"
        time.sleep(0.1)
    sys.exit(f"{name} did not start; see {err.name}")


class Peer:
    """A `softphone peer` whose JSON lines are time-stamped as they come."""

    def __init__(self, binary, server, peer_id, extra=()):
        cmd = [binary, "peer", "--server", server, "--id", peer_id, *extra]
        self.name = peer_id
        self.proc = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "RUST_LOG": "warn"})
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.put((time.monotonic(), json.loads(line)))
            except json.JSONDecodeError:
                pass

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_event(self, names, timeout):
        """The first line whose `event` is one of `names`: (time, line)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit(f"{self.name}: none of {names} within {timeout} s")
            try:
                at, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line.get("event") in names:
                return at, line


def seconds(text):
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text.rstrip("s"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--heartbeat-ttl", default="5s")
    parser.add_argument("--offline-grace", default="10s")
    args = parser.parse_args()
    patience = seconds(args.heartbeat_ttl) + seconds(args.offline_grace) + 30
    flags = ["--heartbeat-ttl", args.heartbeat_ttl, "--offline-grace", args.offline_grace]
    work = tempfile.mkdtemp()
    port = free_port()
    spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--logfile", os.path.join(work, "redis.log")])
    for _ in range(100):
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            break
        time.sleep(0.1)
    redis = f"redis://127.0.0.1:{port}/"
    node1, url1 = start_node(args.binary, "n1", redis, flags, work)
    _node2, url2 = start_node(args.binary, "n2", redis, flags, work)
    print(f"heartbeat TTL {args.heartbeat_ttl}, offline grace {args.offline_grace}; "
          f"load average {open('/proc/loadavg').read().split()[:3]}")

    def kill_the_callers_node(node, caller, callee, reached, outcomes, label):
        """Calls `callee` from `caller` (on `node`) until `reached`, then kills
        `node` with SIGKILL and times the callee's first of `outcomes`."""
        time.sleep(1)
        caller.send(f"call {callee.name}")
        (caller if reached == "accepted" else callee).wait_event({reached}, 20)
        killed = time.monotonic()
        node.send_signal(signal.SIGKILL)
        at, line = callee.wait_event(outcomes, patience)
        print(f"{label}: kill -9 of the caller's node -> callee's {line['event']} {line} "
              f"after {at - killed:.2f} s")

    bob = Peer(args.binary, url2, "bob", ["--auto", "accept"])
    alice = Peer(args.binary, url1, "alice")
    kill_the_callers_node(node1, alice, bob, "accepted", {"hung_up"}, "mid-call")

    node1, url1 = start_node(args.binary, "n1", redis, flags, work)
    dave = Peer(args.binary, url2, "dave")
    carol = Peer(args.binary, url1, "carol")
    kill_the_callers_node(node1, carol, dave, "invitation_received",
                          {"invitation_failure", "invitation_canceled"}, "mid-ring")


if __name__ == "__main__":
    try:
        main()
    finally:
        for proc in STARTED:
            if proc.poll() is None:
                proc.kill()
