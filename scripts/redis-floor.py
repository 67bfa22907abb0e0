#!/usr/bin/env python3
"""Redis's CPU per call for the four scripts one cluster call costs, and
nothing else (docs/scale-out.md, "What Redis alone costs a call").

Usage: scripts/redis-floor.py PORT PID CALL RATE SECONDS [pipelined]

CALL is a file of the four EVALSHA lines of one call as `redis-cli
monitor` printed them (invite from node n1; received and accept from n2;
hang-up from n1: `scripts/redis-floor.sh` captures them). The scripts must
be loaded in that Redis already (the nodes that served the call loaded
them). Replays RATE calls a second for SECONDS over two connections, one
per node, each step awaiting the previous step's reply as the nodes do
(or, with `pipelined`, every call's step at once, the cost with no waiting
at all), with both nodes' channels subscribed so that every publish is
delivered. Prints redis-server's CPU time per call (utime + stime of PID
from /proc). Python's own CPU is not counted: only the server's is read.
"""
import asyncio
import os
import re
import shlex
import sys
import time

PORT, PID, CALL = int(sys.argv[1]), sys.argv[2], sys.argv[3]
RATE, SECONDS = int(sys.argv[4]), float(sys.argv[5])
PIPELINED = sys.argv[6:] == ["pipelined"]
NODE_OF_STEP = ["n1", "n2", "n2", "n1"]
PAIRS = 50


def resp(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def captured_steps(path):
    steps = []
    for line in open(path):
        line = line[line.index('"'):].strip()
        # redis-cli quotes with C escapes; the JSON's own quotes are \" there.
        steps.append([a.replace("\x00", '"') for a in shlex.split(line.replace('\\"', "\x00"))])
    if len(steps) != 4 or any(s[0].upper() != "EVALSHA" for s in steps):
        sys.exit(f"{path}: expected the four EVALSHA of one call, got {len(steps)} lines")
    return steps


STEPS = captured_steps(CALL)
CALL_ID, CALLER, CALLEE = STEPS[0][3], STEPS[0][4], STEPS[0][5]
SESSION = re.compile(r"\b(n[12])/\d+\b")


def step_args(i, step):
    """Step `step` of call `i`: its own call id, one of PAIRS caller/callee pairs."""
    k = i % PAIRS

    def rename(a):
        a = a.replace(CALL_ID, f"floor-{i}").replace(CALLER, f"floor-a{k}").replace(CALLEE, f"floor-b{k}")
        return SESSION.sub(lambda m: f"{m.group(1)}/{k}", a)

    return [rename(a) for a in STEPS[step]]


def cpu_ticks():
    fields = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Connection:
    """One RESP connection; replies are matched to requests in order."""

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", PORT)
        self.waiting = asyncio.Queue()
        self.task = asyncio.create_task(self.read_forever())
        return self

    async def reply(self):
        line = await self.reader.readuntil(b"\r\n")
        kind, rest = line[:1], line[1:-2]
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else (await self.reader.readexactly(n + 2))[:-2]
        if kind == b"*":
            return [await self.reply() for _ in range(int(rest))]
        if kind == b"-":
            return RuntimeError(rest.decode())
        return rest

    async def read_forever(self):
        while True:
            value = await self.reply()
            (await self.waiting.get()).set_result(value)

    async def call(self, args):
        done = asyncio.get_running_loop().create_future()
        self.waiting.put_nowait(done)
        self.writer.write(resp(args))
        value = await done
        if isinstance(value, Exception):
            raise value
        return value


async def listen(node):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    writer.write(resp(["SUBSCRIBE", f"sp:n:{node}"]))
    while await reader.read(1 << 16):
        pass


async def main():
    nodes = {n: await Connection().open() for n in ("n1", "n2")}
    setup = nodes["n1"]
    # Every peer online with one session on its node, so each event is published.
    for k in range(PAIRS):
        await setup.call(["HSET", f"sp:s:floor-a{k}", f"n1/{k}", "floor"])
        await setup.call(["HSET", f"sp:s:floor-b{k}", f"n2/{k}", "floor"])
    listeners = [asyncio.create_task(listen(n)) for n in ("n1", "n2")]
    await asyncio.sleep(0.5)

    async def one_call(i):
        for step in range(4):
            answer = await nodes[NODE_OF_STEP[step]].call(step_args(i, step))
            if answer not in (b"online", 1, b"1"):
                sys.exit(f"call {i} step {step}: Redis answered {answer!r}")

    calls = int(RATE * SECONDS)
    before, start = cpu_ticks(), time.monotonic()
    if PIPELINED:
        for step in range(4):
            node = nodes[NODE_OF_STEP[step]]
            await asyncio.gather(*(node.call(step_args(i, step)) for i in range(calls)))
    else:
        running = []
        for i in range(calls):
            delay = start + i / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            running.append(asyncio.create_task(one_call(i)))
        await asyncio.gather(*running)
    spent = (cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
    how = "every step pipelined" if PIPELINED else f"paced at {RATE}/s, one request at a time"
    print(f"{how}: {calls} calls in {time.monotonic() - start:.1f} s, "
          f"redis-server CPU per call {spent / calls * 1e6:.1f} µs")
    for task in listeners:
        task.cancel()


asyncio.run(main())
