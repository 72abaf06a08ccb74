#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pidfds.py LOG READY GO OUTSIDE_PID

Holds pidfds: one of a child it forked (pidfd_open), one of a process
outside its tree (OUTSIDE_PID), one O_NONBLOCK. Logs "child <pid>" and
creates READY, then counts "tick N" every 100 ms. When GO exists it checks
the child's pidfd is not readable while the child lives, tells the child
to exit (through a pipe) and waits with waitid(P_PIDFD): "child exited 7";
then kills OUTSIDE_PID with pidfd_send_signal: "outside killed"; and
"nonblock ok" if the third pidfd still has O_NONBLOCK. Exits 0.
"""
import fcntl, os, select, signal, sys, time

log_path, ready, go, outside = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
def say(s):
    os.write(log, (s + "\n").encode())

r, w = os.pipe()
child = os.fork()
if child == 0:
    os.close(w)
    os.read(r, 1)
    os._exit(7)
os.close(r)
pfd_child = os.pidfd_open(child)
pfd_outside = os.pidfd_open(outside)
pfd_nb = os.pidfd_open(child, os.O_NONBLOCK if hasattr(os, "O_NONBLOCK") else 0o4000)
say(f"child {child} fds {pfd_child} {pfd_outside} {pfd_nb}")
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
n = 0
while not os.path.exists(go):
    n += 1
    say(f"tick {n}")
    time.sleep(0.1)
p = select.poll()
p.register(pfd_child, select.POLLIN)
if p.poll(0):
    say("FAIL child pidfd readable while the child lives")
    sys.exit(1)
os.write(w, b"x")
p.poll(5000)
info = os.waitid(os.P_PIDFD, pfd_child, os.WEXITED)
say(f"child exited {info.si_status}")
signal.pidfd_send_signal(pfd_outside, signal.SIGTERM)
say("outside killed")
if fcntl.fcntl(pfd_nb, fcntl.F_GETFL) & os.O_NONBLOCK:
    say("nonblock ok")
