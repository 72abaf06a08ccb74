#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dnotify.py DIR LOG READY [nowatch | access FILE]

Watches directory DIR with dnotify (fcntl F_NOTIFY, DN_CREATE with
DN_MULTISHOT, the default SIGIO): every file created in DIR sends it a
signal, which it counts. Logs "start PID", then every 200 ms "ok N
notified C" (C: the signals so far). A program of this kind (a mail
spooler, an older file manager) waits for those signals: without the
watch it never sees a new file. With "nowatch" it only holds DIR open.
With "access FILE" (a file in DIR) it maps FILE and watches DIR for
reads instead (DN_ACCESS): it never reads FILE itself, so any signal is
someone else's read of a file in DIR.
"""
import fcntl, mmap, os, signal, sys, time

d, log, ready = sys.argv[1], sys.argv[2], sys.argv[3]
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
count = 0


def on_sigio(sig, frame):
    global count
    count += 1


def say(text):
    os.write(out, (text + "\n").encode())


signal.signal(signal.SIGIO, on_sigio)
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
mode = sys.argv[4:5]
if mode == ["access"]:
    with open(sys.argv[5], "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
    fcntl.fcntl(fd, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT)
elif mode != ["nowatch"]:
    fcntl.fcntl(fd, fcntl.F_NOTIFY, fcntl.DN_CREATE | fcntl.DN_MULTISHOT)
say("start %d" % os.getpid())
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    n += 1
    say("ok %d notified %d" % (n, count))
    time.sleep(0.2)
