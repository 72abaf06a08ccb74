#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""In-memory state that must survive a dump and restore.

    pycounter.py LOG READY       run: every 50 ms n += 1, d[n] = n*n and a
                                 line "n=<n> sum=<sum of d> r=<32 random bits>"
                                 (random.Random(42): the Mersenne Twister state
                                 lives in memory too); READY gets the pid.
    pycounter.py --verify LOG    check every line: n counts 1, 2, 3... with no
                                 gap or reset, sum matches, r matches the
                                 sequence; prints the last n; exit 1 if not.
"""
import os
import random
import sys
import time


def line_for(n, rng_bits):
    return "n=%d sum=%d r=%d" % (n, n * (n + 1) * (2 * n + 1) // 6, rng_bits)


def run(log_path, ready_path):
    d = {}
    rng = random.Random(42)
    total = 0
    n = 0
    with open(log_path, "a", buffering=1) as log:
        tmp = ready_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, ready_path)
        while True:
            n += 1
            d[n] = n * n
            total += n * n
            if n % 64 == 0 and total != sum(d.values()):
                log.write("CORRUPT n=%d total=%d dict=%d\n" % (n, total, sum(d.values())))
            log.write("n=%d sum=%d r=%d\n" % (n, total, rng.getrandbits(32)))
            time.sleep(0.05)


def verify(log_path):
    rng = random.Random(42)
    want = 1
    with open(log_path) as f:
        for lineno, raw in enumerate(f, 1):
            got = raw.rstrip("\n")
            expect = line_for(want, rng.getrandbits(32))
            if got != expect:
                print("%s:%d: got %r, expected %r" % (log_path, lineno, got, expect))
                return 1
            want += 1
    print("last n=%d" % (want - 1))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--verify":
        return verify(argv[2])
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    run(argv[1], argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
