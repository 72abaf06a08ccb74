# SPDX-License-Identifier: MIT
# incrpy.py LOG READY: a Python program whose memory changes between
# incremental dumps (tests/e2e/test_incr_python.sh). It holds 64 buffers of
# 1 MiB of random bytes and one that grows. SIGUSR1 runs a round: it writes
# into a few buffers, replaces some with new ones (the allocator unmaps and
# maps), grows the growing one (realloc: large blocks are moved with
# mremap) and forces a garbage collection, then logs "sum ROUND HASH".
# SIGUSR2 logs "check HASH" of what it holds now. A restore is exact if
# the check equals the last sum.
import gc
import hashlib
import os
import random
import signal
import sys

log = open(sys.argv[1], "a", buffering=1)
rng = random.Random(1234)
bufs = [bytearray(rng.randbytes(1 << 20)) for _ in range(64)]
grow = bytearray(rng.randbytes(4 << 20))
rounds = 0
pending = []


def digest():
    h = hashlib.sha256()
    for b in bufs:
        h.update(b)
    h.update(grow)
    return h.hexdigest()


def round_():
    global grow, rounds
    rounds += 1
    for _ in range(200):
        b = bufs[rng.randrange(len(bufs))]
        b[rng.randrange(len(b))] = rng.randrange(256)
    for _ in range(4):
        bufs[rng.randrange(len(bufs))] = bytearray(rng.randbytes(1 << 20))
    grow += rng.randbytes(3 << 20)
    gc.collect()
    log.write("sum %d %s\n" % (rounds, digest()))


signal.signal(signal.SIGUSR1, lambda *_: pending.append("round"))
signal.signal(signal.SIGUSR2, lambda *_: pending.append("check"))
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
while True:
    signal.pause()
    while pending:
        what = pending.pop(0)
        if what == "round":
            round_()
        else:
            log.write("check %s\n" % digest())
