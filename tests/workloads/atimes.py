#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""atimes.py FILE LOG READY

Maps FILE privately and a memfd of 64 KiB of its own shared, and never
reads either through a file again: their access times are the program's
to see (stat, fstat) and nothing it does changes them. Logs "start PID",
"memfd FD", then every 200 ms "ok N FILESUM MEMFDSUM" (sums of the bytes
each mapping shows).
"""
import mmap, os, sys, time, zlib

path, log, ready = sys.argv[1], sys.argv[2], sys.argv[3]
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def say(text):
    os.write(out, (text + "\n").encode())


with open(path, "rb") as f:
    mapped = mmap.mmap(f.fileno(), 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
mfd = os.memfd_create("atimes")
os.ftruncate(mfd, 65536)
shared = mmap.mmap(mfd, 65536, mmap.MAP_SHARED)
shared[:] = os.urandom(65536)
say("start %d" % os.getpid())
say("memfd %d" % mfd)
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    n += 1
    say("ok %d %08x %08x" % (n, zlib.crc32(mapped), zlib.crc32(shared)))
    time.sleep(0.2)
