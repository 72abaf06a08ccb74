#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""futexhash.py LOG READY SLOTS

A threaded program that sizes its private futex hash (Linux 6.16+:
prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, SLOTS): 0 makes it use the
global hash, as a program that wants no private one does). The kernel gave
it a default private hash when its first thread started. Every 100 ms it
reads the size back (PR_FUTEX_HASH_GET_SLOTS) and logs "bad: slots A, was
B" when it differs, "ok N" every 500 ms; first "start PID slots B".
"""
import ctypes, os, sys, threading, time

log, ready, slots = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
libc = ctypes.CDLL(None, use_errno=True)
PR_FUTEX_HASH, SET_SLOTS, GET_SLOTS = 78, 1, 2


def say(text):
    os.write(fd, (text + "\n").encode())


def get():
    return libc.prctl(PR_FUTEX_HASH, GET_SLOTS, 0, 0, 0)


threading.Thread(target=lambda: time.sleep(10**6), daemon=True).start()
default = get()
if libc.prctl(PR_FUTEX_HASH, SET_SLOTS, slots, 0, 0) < 0:
    sys.exit("PR_FUTEX_HASH_SET_SLOTS %d: errno %d" % (slots, ctypes.get_errno()))
first = get()
say("start %d slots %d default %d" % (os.getpid(), first, default))
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    now = get()
    if now != first:
        say("bad: slots %d, was %d" % (now, first))
    if n % 5 == 0:
        say("ok %d" % (n // 5 + 1))
    n += 1
    time.sleep(0.1)
