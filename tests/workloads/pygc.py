# SPDX-License-Identifier: MIT
"""A multiprocessing pool (fork) whose parent goes on using its data.

The parent builds N small objects, forks a pool of WORKERS, then reads
every object: CPython writes each object's reference count, so the parent
gets its own copy of every page of its heap, while the idle workers keep
sharing the pages as they were at the fork, among themselves only. READY
is made once that is done. Then, once a second, the pool maps a function
over 16 numbers and the parent checks the result and a sum over its data:
"ok ITER SUM" or "BAD ...".

usage: pygc.py N WORKERS LOG READY
"""
import multiprocessing as mp
import os
import sys
import time


def work(x):
    return x * 2


def main():
    n, workers, log, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    os.closerange(3, 4096)
    mp.set_start_method("fork")
    data = [{"a": i, "b": "x%08d" % i} for i in range(n)]
    want = n * (n - 1) // 2
    pool = mp.Pool(workers)
    with open(log, "a", buffering=1) as f:
        print("pool " + " ".join(str(p.pid) for p in pool._pool), file=f)
        total = sum(d["a"] for d in data)
        with open(ready + ".tmp", "w") as r:
            r.write("%d\n" % os.getpid())
        os.rename(ready + ".tmp", ready)
        it = 0
        while True:
            it += 1
            r = pool.map(work, range(16))
            total = sum(d["a"] for d in data)
            if r != [2 * i for i in range(16)] or total != want:
                print("BAD %d %r %d" % (it, r, total), file=f)
            else:
                print("ok %d %d" % (it, total), file=f)
            time.sleep(1)


if __name__ == "__main__":
    main()
