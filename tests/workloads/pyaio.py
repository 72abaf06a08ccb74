#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pyaio.py DIR LOG READY: an asyncio server and a selectors client.

The root process runs an asyncio loop (epoll, with its self-pipe
socketpair) serving asyncio.start_unix_server on DIR/srv.sock, and a
loop.call_later timer every 200 ms ("tick K" every 5th). Its child, forked
before any loop exists, talks to it through a selectors.DefaultSelector
(epoll) on a non-blocking unix socket: every 50 ms it sends "N" and waits
for "N N*N" back. Both sides check the numbers (the server that each
request is the one after the last, the client each answer): "ok N" lines
with N counting up, "FAIL ..." on any mismatch or timeout.
"""
import asyncio
import os
import selectors
import socket
import sys
import time

os.closerange(3, 4096)
d, logpath, ready = sys.argv[1:4]
sockpath = os.path.join(d, "srv.sock")
logfd = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


def log(line):
    os.write(logfd, (line + "\n").encode())


def client():
    sel = selectors.DefaultSelector()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(200):
        try:
            s.connect(sockpath)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.02)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, "srv")
    buf = b""
    n = 0
    while True:
        n += 1
        s.sendall(b"%d\n" % n)
        deadline = time.monotonic() + 5
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                log("FAIL client: no answer to %d" % n)
                os._exit(1)
            for key, _ in sel.select(left):
                if key.data != "srv":
                    log("FAIL client: selector data %r" % (key.data,))
                chunk = s.recv(4096)
                if not chunk:
                    log("FAIL client: server closed")
                    os._exit(1)
                buf += chunk
        line, buf = buf.split(b"\n", 1)
        if line != b"%d %d" % (n, n * n):
            log("FAIL client: sent %d, got %r" % (n, line))
        log("ok %d" % n)
        # a selector wait with nothing to read: 50 ms
        if sel.select(0.05):
            log("FAIL client: unexpected data")


async def server():
    loop = asyncio.get_running_loop()
    last = 0
    ticks = 0

    async def handle(reader, writer):
        nonlocal last
        while True:
            line = await reader.readline()
            if not line:
                return
            n = int(line)
            if n != last + 1:
                log("FAIL server: got %d after %d" % (n, last))
            last = n
            writer.write(b"%d %d\n" % (n, n * n))
            await writer.drain()

    def tick():
        nonlocal ticks
        ticks += 1
        if ticks % 5 == 0:
            log("tick %d" % ticks)
        loop.call_later(0.2, tick)

    try:
        os.unlink(sockpath)
    except FileNotFoundError:
        pass
    srv = await asyncio.start_unix_server(handle, path=sockpath)
    loop.call_later(0.2, tick)
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    if os.fork() == 0:
        client()  # connects once the server listens
        os._exit(0)
    asyncio.run(server())
