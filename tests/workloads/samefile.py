#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""samefile.py DIR LOG READY

Many open file descriptions of few files, as the restore's verify stage
sees them (one check per file, not per fd: restorer/checks.c):
  DIR/data.bin (1,000 bytes) opened three times, parked at 10, 500 and 900,
  in that order;
  /dev/null opened three times, DIR/null2 (the test's own node of the same
  device) twice.
Every 100 ms checks each position and that each device takes a write and
reads as empty, and logs "iter <n> ok" (or "FAIL <what>") to LOG.
"""
import os, sys, time

d, log, ready = sys.argv[1:4]
data = [os.open(d + "/data.bin", os.O_RDONLY) for _ in range(3)]
for fd, pos in zip(data, (10, 500, 900)):
    os.lseek(fd, pos, os.SEEK_SET)
nulls = [os.open("/dev/null", os.O_RDWR) for _ in range(3)]
nulls += [os.open(d + "/null2", os.O_RDWR) for _ in range(2)]
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
n = 0
while True:
    bad = [f"pos {os.lseek(fd, 0, os.SEEK_CUR)} != {pos}"
           for fd, pos in zip(data, (10, 500, 900)) if os.lseek(fd, 0, os.SEEK_CUR) != pos]
    for fd in nulls:
        if os.write(fd, b"x") != 1 or os.read(fd, 1) != b"":
            bad.append(f"fd {fd} is not a null device")
    n += 1
    os.write(out, (f"FAIL {' '.join(bad)}\n" if bad else f"iter {n} ok\n").encode())
    time.sleep(0.1)
