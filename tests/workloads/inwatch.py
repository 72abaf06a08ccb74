#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""inwatch.py DIR LOG READY GATE

An inotify watcher (inotify_init1 through ctypes, IN_CREATE on DIR) that
reads its events only while the file GATE exists, as a program busy with
something else would leave them queued. Each event read is logged "event
NAME"; every 100 ms "ok N". A checkpoint that dropped queued events would
show as a name created and never logged.
"""
import ctypes, os, struct, sys, time

d, log, ready, gate = sys.argv[1:5]
libc = ctypes.CDLL(None, use_errno=True)
IN_NONBLOCK, IN_CREATE = 0o4000, 0x100
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def say(text):
    os.write(out, (text + "\n").encode())


fd = libc.inotify_init1(IN_NONBLOCK)
if fd < 0 or libc.inotify_add_watch(fd, d.encode(), IN_CREATE) < 0:
    sys.exit("inotify: errno %d" % ctypes.get_errno())
say("start %d" % os.getpid())
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    if os.path.exists(gate):
        try:
            buf = os.read(fd, 65536)
        except BlockingIOError:
            buf = b""
        while buf:
            wd, mask, cookie, length = struct.unpack_from("iIII", buf)
            name = buf[16:16 + length].rstrip(b"\0").decode()
            say("event %s" % name)
            buf = buf[16 + length:]
    n += 1
    say("ok %d" % n)
    time.sleep(0.1)
