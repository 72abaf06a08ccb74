#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fanwatch.py FILE LOG READY

A program that maps FILE privately (the file closed after) and watches it
with fanotify (an inode mark: FAN_OPEN | FAN_ACCESS | FAN_CLOSE_NOWRITE),
as an on-access scanner or an auditor would. Every event it reads is
logged "event MASK pid PID"; every 100 ms "ok N". An open or a read of
FILE by anyone shows (tests/e2e/test_fanotify.sh).
"""
import ctypes, mmap, os, struct, sys, time

path, log, ready = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                               ctypes.c_char_p]
FAN_CLASS_NOTIF, FAN_NONBLOCK, FAN_MARK_ADD = 0, 2, 1
FAN_ACCESS, FAN_OPEN, FAN_CLOSE_NOWRITE, AT_FDCWD = 0x1, 0x20, 0x10, -100
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def say(text):
    os.write(out, (text + "\n").encode())


with open(path, "rb") as f:
    mapped = mmap.mmap(f.fileno(), 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
fan = libc.fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, os.O_RDONLY)
if fan < 0 or libc.fanotify_mark(fan, FAN_MARK_ADD, FAN_ACCESS | FAN_OPEN | FAN_CLOSE_NOWRITE,
                                 AT_FDCWD, path.encode()) < 0:
    sys.exit("fanotify: errno %d" % ctypes.get_errno())
say("start %d" % os.getpid())
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    try:
        buf = os.read(fan, 65536)
    except BlockingIOError:
        buf = b""
    while buf:
        length, _, _, _, mask, fd, pid = struct.unpack_from("IBBHQii", buf)
        say("event %x pid %d" % (mask, pid))
        if fd >= 0:
            os.close(fd)
        buf = buf[length:]
    n += 1
    say("ok %d" % n)
    time.sleep(0.1)
