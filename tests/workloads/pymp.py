#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""python3 threads and a multiprocessing pool whose combined output must
continue across a dump and restore with no gap or reset.

    pymp.py LOG READY       run: two threading threads each count their own
                            ticks; the main thread hands n to a Pool of two
                            forked workers (pipes between the processes, a
                            POSIX semaphore in /dev/shm unlinked while
                            mapped), gets back (n, n*n, worker pid) and
                            writes "n=<n> sq=<n*n> a=<ticks> b=<ticks>
                            w=<pid>"; READY gets the pid.
    pymp.py --verify LOG    n counts 1, 2, 3... with no gap, sq = n*n, both
                            thread counters never go back and keep moving,
                            at most two distinct worker pids; exit 1 if not.
"""
import multiprocessing
import os
import sys
import threading
import time


def square(n):
    return n, n * n, os.getpid()


class Ticker(threading.Thread):
    def __init__(self, period):
        super().__init__(daemon=True)
        self.period = period
        self.ticks = 0

    def run(self):
        while True:
            self.ticks += 1
            time.sleep(self.period)


def run(log_path, ready_path):
    ctx = multiprocessing.get_context("fork")
    a, b = Ticker(0.01), Ticker(0.03)
    a.start()
    b.start()
    with ctx.Pool(2) as pool, open(log_path, "a", buffering=1) as log:
        # the workers exist once they answered
        pool.map(square, range(4))
        tmp = ready_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, ready_path)
        n = 0
        while True:
            n += 1
            got, sq, pid = pool.apply(square, (n,))
            if got != n:
                log.write("CORRUPT asked %d got %d\n" % (n, got))
            log.write("n=%d sq=%d a=%d b=%d w=%d\n" % (n, sq, a.ticks, b.ticks, pid))
            time.sleep(0.05)


def verify(log_path):
    want = 1
    last_a = last_b = 0
    workers = set()
    with open(log_path) as f:
        for lineno, raw in enumerate(f, 1):
            fields = dict(kv.split("=", 1) for kv in raw.split())
            try:
                n, sq = int(fields["n"]), int(fields["sq"])
                ta, tb, w = int(fields["a"]), int(fields["b"]), int(fields["w"])
            except (KeyError, ValueError):
                print("%s:%d: bad line %r" % (log_path, lineno, raw))
                return 1
            if n != want or sq != n * n:
                print("%s:%d: expected n=%d sq=%d, got %r" % (log_path, lineno, want, want * want, raw))
                return 1
            if ta < last_a or tb < last_b:
                print("%s:%d: a thread counter went back: %r" % (log_path, lineno, raw))
                return 1
            last_a, last_b = ta, tb
            workers.add(w)
            want += 1
    if len(workers) > 2:
        print("%s: %d worker pids, expected the pool's 2: %s" % (log_path, len(workers), sorted(workers)))
        return 1
    print("last n=%d a=%d b=%d workers=%s" % (want - 1, last_a, last_b, sorted(workers)))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--verify":
        return verify(argv[2])
    if len(argv) == 3:
        return run(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
