#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A long job for tests/e2e/test_preserve*.sh (a simulated reboot).

    preserve_job.py LOG READY TMPFILE PORTFILE

State in memory (a counter and a dict), a child connected by two pipes
(it answers every line with the line doubled), a listening TCP socket on
127.0.0.1 (port written to PORTFILE; each client gets "hello N\\n"), a file
TMPFILE it keeps open (written once, read back every step), an interval
timer (SIGALRM every 50 ms, counted). Every 100 ms it appends to LOG:

    N ticks=T step=S maxstep=M accepted=A

N counts up by one from 1, S is the CLOCK_MONOTONIC step since the last
line, M the largest step so far. Any check that fails writes "ERROR ..."
and exits 1.  preserve_job.py --verify LOG: the lines count up with no gap
or reset and no ERROR line.
"""
import os
import signal
import socket
import sys
import time

CONTENT = "preserved tmpfs content\n" * 100


def verify(path):
    prev = 0
    with open(path) as f:
        for line in f:
            if line.startswith("ERROR"):
                print(line.strip())
                return 1
            n = int(line.split()[0])
            if n != prev + 1:
                print("gap or reset: %d after %d" % (n, prev))
                return 1
            prev = n
    return 0 if prev else 1


def child(rd, wr):
    r = os.fdopen(rd, "r")
    w = os.fdopen(wr, "w")
    for line in r:
        w.write(str(int(line) * 2) + "\n")
        w.flush()
    sys.exit(0)


def main():
    log, ready, tmpfile, portfile = sys.argv[1:5]
    ticks = [0]

    def on_alarm(sig, frame):
        ticks[0] += 1

    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w1)
        os.close(r2)
        child(r1, w2)
    os.close(r1)
    os.close(w2)
    to_child = os.fdopen(w1, "w")
    from_child = os.fdopen(r2, "r")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    tf = open(tmpfile, "w+")
    tf.write(CONTENT)
    tf.flush()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.setblocking(False)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    out = open(log, "a")
    state = {}
    n = 0
    accepted = 0
    last = time.monotonic()
    maxstep = 0.0
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)

    def fail(msg):
        out.write("ERROR %s\n" % msg)
        out.flush()
        sys.exit(1)

    while True:
        time.sleep(0.1)
        n += 1
        state[n] = n * n
        if len(state) != n or state[n // 2 + 1] != (n // 2 + 1) ** 2:
            fail("state lost at %d" % n)
        to_child.write("%d\n" % n)
        to_child.flush()
        reply = from_child.readline()
        if reply != "%d\n" % (2 * n):
            fail("child answered %r to %d" % (reply, n))
        tf.seek(0)
        if tf.read() != CONTENT:
            fail("the tmpfs file lost its content at %d" % n)
        try:
            c, _ = ls.accept()
            c.sendall(b"hello %d\n" % n)
            c.close()
            accepted += 1
        except BlockingIOError:
            pass
        now = time.monotonic()
        step = now - last
        last = now
        maxstep = max(maxstep, step)
        out.write("%d ticks=%d step=%.3f maxstep=%.3f accepted=%d\n" %
                  (n, ticks[0], step, maxstep, accepted))
        out.flush()


if __name__ == "__main__":
    if sys.argv[1] == "--verify":
        sys.exit(verify(sys.argv[2]))
    main()
