#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""zgroups.py LOG READY GO

A parent with three zombie children it has not reaped yet: one that made a
process group of its own (setpgid(0, 0), as a shell's job does) and exited
3, one that made a session of its own (setsid) and exited 4, one in the
parent's group that exited 5. Logs "zombie <pid> pgid <g> sid <s>" for each
(pgid and sid read from /proc while it is a zombie), creates READY, and
when GO exists reaps them and logs "reaped <pid> <status>".
"""
import os, sys, time

log, ready, go = sys.argv[1:4]
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
def say(s):
    os.write(out, (s + "\n").encode())
kids = []
for how, code in (("group", 3), ("session", 4), ("same", 5)):
    pid = os.fork()
    if pid == 0:
        if how == "group":
            os.setpgid(0, 0)
        elif how == "session":
            os.setsid()
        os._exit(code)
    kids.append(pid)
for pid in kids:
    while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
def show():
    for pid in kids:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        say(f"zombie {pid} state {f[0]} pgid {f[2]} sid {f[3]}")
show()
while not os.path.exists(go):
    time.sleep(0.1)
show()
for pid in kids:
    _, st = os.waitpid(pid, 0)
    say(f"reaped {pid} {os.waitstatus_to_exitcode(st)}")
time.sleep(60)
