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
A second pipeline's leader exited 7 and was reaped at once: its member
runs on in a group without any leader process ("lost member <pid> state
<S> pgid <g> sid <s>"); killpg of that group reaches it too ("lost member
reaped <status>").
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


def job(pgid, code=None):
    """A child in process group pgid (0: a group of its own), set by both
    sides as shells do, so neither races; it exits with code, or runs on."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, pgid)
        except OSError:
            pass
        if code is not None:
            os._exit(code)
        while True:
            time.sleep(1)
    try:
        os.setpgid(pid, pgid or pid)
    except OSError:
        pass
    return pid


# a pipeline: the leader makes the group and exits, the second process runs on
lead = job(0, 6)
member = job(lead)
kids.append(lead)
# a pipeline whose first process was reaped: its group has no leader process
lead2 = job(0)
member2 = job(lead2)
while open(f"/proc/{member2}/stat").read().rsplit(")", 1)[1].split()[2] != str(lead2):
    time.sleep(0.01)
os.kill(lead2, 9)
os.waitpid(lead2, 0)
for pid in kids:
    while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
# the live members asleep in their loop (one just forked may still run: the
# state logged before the dump must not be a moment's)
for pid in (member, member2):
    while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "S":
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
    f = open(f"/proc/{member2}/stat").read().rsplit(")", 1)[1].split()
    say(f"lost member {member2} state {f[0]} pgid {f[2]} sid {f[3]}")
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
os.killpg(lead2, 15)
_, st = os.waitpid(member2, 0)
say(f"lost member reaped {os.waitstatus_to_exitcode(st)}")
time.sleep(60)
