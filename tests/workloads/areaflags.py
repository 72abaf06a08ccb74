# SPDX-License-Identifier: MIT
# areaflags.py LOG READY MIB: a Python program with MIB MiB of random bytes
# in one private anonymous area of its own (tests/e2e/test_areas_before_freeze.sh).
# SIGUSR1 gives the whole area MADV_DONTDUMP: its VmFlags gain "dd" in
# smaps, and no line of maps changes. Every 200 ms it logs
# "ok N FLAGS" (N counts up, FLAGS the area's VmFlags as smaps shows them)
# or "bad N ..." once its bytes are not the ones it wrote.
import mmap
import os
import random
import signal
import sys
import time
import zlib

log = open(sys.argv[1], "a", buffering=1)
size = int(sys.argv[3]) << 20
area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
area.write(random.Random(7).randbytes(size))
want = zlib.crc32(area)
start = "%x-" % __import__("ctypes").addressof(__import__("ctypes").c_char.from_buffer(area))
pending = []


def vmflags():
    found = False
    with open("/proc/self/smaps") as f:
        for line in f:
            if line.startswith(start):
                found = True
            elif found and line.startswith("VmFlags:"):
                return line.split(":", 1)[1].strip()
    return "?"


signal.signal(signal.SIGUSR1, lambda *_: pending.append(1))
log.write("area %s %d\n" % (start, size))
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
n = 0
while True:
    while pending:
        pending.pop()
        area.madvise(mmap.MADV_DONTDUMP)
    n += 1
    log.write("%s %d %s\n" % ("ok" if zlib.crc32(area) == want else "bad", n, vmflags()))
    time.sleep(0.2)
