#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""autogroup.py LOG READY

The nice value of a session's autogroup (/proc/PID/autogroup: the
scheduling group the kernel makes for each session). A tree of three:

  root     leads its session (the test starts it with setsid), sets its
           autogroup's nice to 7;
  leader   a child that makes a session of its own (os.setsid), nice 3;
  member   leader's child, in leader's session and autogroup.

Every 100 ms each reads its own /proc/self/autogroup and logs
"bad NAME: nice A -> B" when the value differs from its first, "ok NAME N"
every 500 ms, first "start NAME PID nice V".
"""
import os, sys, time

log, ready = sys.argv[1:3]
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def say(text):
    os.write(fd, (text + "\n").encode())


def nice():
    with open("/proc/self/autogroup") as f:
        return int(f.read().split()[-1])


def set_nice(v):
    with open("/proc/self/autogroup", "w") as f:
        f.write(str(v))


def run(name, ready=None):
    first = nice()
    say(f"start {name} {os.getpid()} nice {first}")
    if ready:
        with open(ready + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(ready + ".tmp", ready)
    n = 0
    while True:
        now = nice()
        if now != first:
            say(f"bad {name}: nice {first} -> {now}")
        if n % 5 == 0:
            say(f"ok {name} {n // 5 + 1}")
        n += 1
        time.sleep(0.1)


set_nice(7)
if os.fork() == 0:
    os.setsid()
    set_nice(3)
    if os.fork() == 0:
        run("member")
    run("leader")
time.sleep(0.2)
run("root", ready)
