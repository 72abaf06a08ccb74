#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""zgroups.py LOG READY GO

A parent with four zombie children it has not reaped yet: one that made a
process group of its own (setpgid(0, 0), as a shell's job does) and exited
3, one that made a session of its own (setsid) and exited 4, one in the
parent's group that exited 5, and the leader of a pipeline's group that
exited 6 while the pipeline's second process (a live child of the parent,
put in that group as a shell does) runs on. Logs "zombie <pid> state Z pgid
<g> sid <s>" for each and "member <pid> state <S> pgid <g> sid <s>" (read
from /proc), creates READY, and when GO exists logs them again, reaps the
zombies ("reaped <pid> <status>"), then signals the pipeline's group, whose
leader is gone, with killpg and reaps the member ("member reaped <status>").
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
# a pipeline: the leader makes the group, the second process joins it
# (both set by the parent too, as shells do, so neither races)
lead = os.fork()
if lead == 0:
    os.setpgid(0, 0)
    os._exit(6)
os.setpgid(lead, lead)
member = os.fork()
if member == 0:
    try:
        os.setpgid(0, lead)
    except OSError:
        pass
    while True:
        time.sleep(1)
try:
    os.setpgid(member, lead)
except OSError:
    pass
kids.append(lead)
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
    f = open(f"/proc/{member}/stat").read().rsplit(")", 1)[1].split()
    say(f"member {member} state {f[0]} pgid {f[2]} sid {f[3]}")
show()
while not os.path.exists(go):
    time.sleep(0.1)
show()
for pid in kids:
    _, st = os.waitpid(pid, 0)
    say(f"reaped {pid} {os.waitstatus_to_exitcode(st)}")
os.killpg(lead, 15)
_, st = os.waitpid(member, 0)
say(f"member reaped {os.waitstatus_to_exitcode(st)}")
time.sleep(60)
