#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""delfifo.py DIR LOG READY

Makes the FIFO DIR/f (mode 0640), opens its read end (O_NONBLOCK) in the
parent and forks a child that opens its write end and writes
"before-the-dump"; then DIR/f is removed: both ends are held by different
processes of the tree, and the data waits in the buffer. Once DIR/go
exists, the parent reads the buffer ("ok buffer" if it is intact), the child
writes "after-the-restore", the parent reads it ("ok flow"), and both check
that their fd is a FIFO with no name (link count 0, mode 0640, /proc link
ending in " (deleted)": "ok deleted"). Then "ALL OK"; a failure logs
"FAIL ...".
"""
import os, stat, sys, time

d, log, ready = sys.argv[1:4]
path = os.path.join(d, "f")
go = os.path.join(d, "go")
flag = os.path.join(d, "child-wrote")
os.mkfifo(path)
os.chmod(path, 0o640)
logfd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def say(s):
    os.write(logfd, (s + "\n").encode())


def check_deleted(fd, who):
    st = os.fstat(fd)
    link = os.readlink(f"/proc/self/fd/{fd}")
    if not stat.S_ISFIFO(st.st_mode) or st.st_nlink != 0 or stat.S_IMODE(st.st_mode) != 0o640 \
            or not link.endswith(" (deleted)") or not link.startswith(d + "/"):
        say(f"FAIL {who}: fd is {oct(st.st_mode)} nlink {st.st_nlink} link {link}")
        sys.exit(3)


rd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
pid = os.fork()
if pid == 0:
    os.close(rd)
    wr = os.open(path, os.O_WRONLY)
    os.write(wr, b"before-the-dump")
    open(flag, "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)
    check_deleted(wr, "child")
    while not os.path.exists(os.path.join(d, "read-buffer")):
        time.sleep(0.05)
    os.write(wr, b"after-the-restore")
    while True:
        time.sleep(1)
while not os.path.exists(flag):
    time.sleep(0.01)
os.unlink(path)
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
while not os.path.exists(go):
    time.sleep(0.05)
check_deleted(rd, "parent")
data = os.read(rd, 100)
if data != b"before-the-dump":
    say(f"FAIL buffer: {data!r}")
    sys.exit(3)
say("ok buffer")
open(os.path.join(d, "read-buffer"), "w").close()
deadline = time.time() + 10
got = b""
while got != b"after-the-restore" and time.time() < deadline:
    try:
        got += os.read(rd, 100)
    except BlockingIOError:
        time.sleep(0.02)
if got != b"after-the-restore":
    say(f"FAIL flow: {got!r}")
    sys.exit(3)
say("ok flow")
say("ok deleted")
say("ALL OK")
while True:
    time.sleep(1)
