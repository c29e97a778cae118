#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# progress-watch.py OUT SOCKET - an observer of a gmem-replay from outside:
# queries its control socket in a loop and notes when its progress counter
# (device.seq, the stores done) moves. From its first move while running
# (the destination's resume) until SIGTERM, the longest time it stood still
# is written to OUT as JSON: {"max_still_ms", "samples", "moves"}.
import json
import signal
import socket
import sys
import time

out, path = sys.argv[1], sys.argv[2]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
sock = None
while sock is None and not stop:
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError:
        sock = None
        time.sleep(0.01)
f = sock.makefile("rb") if sock else None
last_seq = last_move = None
max_still = samples = moves = 0
while not stop:
    try:
        sock.sendall(b'{"cmd":"query"}\n')
        line = f.readline()
    except OSError:
        break
    if not line:
        break
    now = time.monotonic_ns()
    rep = json.loads(line)
    samples += 1
    if rep.get("state") not in ("running", "done"):
        continue
    seq = rep["device"]["seq"]
    if seq != last_seq:
        if last_move is not None:
            max_still = max(max_still, now - last_move)
            moves += 1
        last_seq, last_move = seq, now
    time.sleep(0.001)
with open(out, "w") as o:
    json.dump({"max_still_ms": max_still / 1e6, "samples": samples,
               "moves": moves}, o)
