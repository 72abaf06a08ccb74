#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""inshared.py DIR LOG READY [create | deleted [OTHERDIR]]

A program that maps DIR/seg (a file of a tmpfs: a shared memory object)
MAP_SHARED, the file closed after, and watches DIR with inotify for opens,
reads and closes (IN_OPEN | IN_ACCESS | IN_CLOSE), as a program guarding
its segments would. Every event it reads is logged "event MASK NAME";
every 100 ms "ok N CRC" with the CRC32 of the segment. A dump or a
restore that opens or reads the segment shows as events the program never
caused (tests/e2e/test_inotify_shmem.sh). With "create" it watches DIR
for files created and removed only (IN_CREATE | IN_DELETE), which no read
shows. With "deleted" it holds DIR/tmpf open write-only instead,
written and removed (a deleted file, whose content the dump saves), and
logs the CRC32 of what it wrote; with OTHERDIR that file is
OTHERDIR/tmpf (a directory it does not watch).
"""
import ctypes, mmap, os, struct, sys, time, zlib

d, log, ready = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
IN_NONBLOCK, IN_ACCESS, IN_OPEN, IN_CLOSE = 0o4000, 0x1, 0x20, 0x18
IN_CREATE, IN_DELETE = 0x100, 0x200
mask = IN_CREATE | IN_DELETE if sys.argv[4:] == ["create"] else IN_ACCESS | IN_OPEN | IN_CLOSE
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def say(text):
    os.write(out, (text + "\n").encode())


if sys.argv[4:5] == ["deleted"]:
    where = os.path.join((sys.argv[5:] or [d])[0], "tmpf")
    held = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    seg = os.urandom(10000)
    os.write(held, seg)
    os.unlink(where)
else:
    with open(os.path.join(d, "seg"), "r+b") as f:
        seg = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED)
    seg[:4096] = b"\x5a" * 4096  # written through the mapping
ino = libc.inotify_init1(IN_NONBLOCK)
if ino < 0 or libc.inotify_add_watch(ino, d.encode(), mask) < 0:
    sys.exit("inotify: errno %d" % ctypes.get_errno())
say("start %d" % os.getpid())
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    try:
        buf = os.read(ino, 65536)
    except BlockingIOError:
        buf = b""
    while buf:
        wd, mask, cookie, length = struct.unpack_from("iIII", buf)
        name = buf[16:16 + length].rstrip(b"\0").decode() or "-"
        say("event %x %s" % (mask, name))
        buf = buf[16 + length:]
    n += 1
    say("ok %d %08x" % (n, zlib.crc32(seg)))
    time.sleep(0.1)
