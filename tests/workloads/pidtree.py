#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A python3 root with a child over a pipe and a C child (pidcheck), for
test_new_pidns.

    pidtree.py LOG READY PIDCHECK CHECKLOG
        the root sends n = 1, 2, 3... every 100 ms to its python child over a
        pipe; the child answers "n pid ppid" over another pipe; the root
        checks that n comes back, that the child's pid is the one fork gave
        and its parent is the root, and that its own getpid() and
        /proc/self/stat still say its pid; it writes "ok n=N" or "BAD ..."
        to LOG. PIDCHECK CHECKLOG runs as a second child. READY gets the
        root's pid once both children run. The python child exits on EOF.
"""
import os
import sys
import time


def stat_pid():
    with open("/proc/self/stat") as f:
        return int(f.read().split()[0])


def child(rd, wr):
    me = os.getpid()
    while True:
        b = os.read(rd, 64)
        if not b:
            os._exit(0)
        n = int(b)
        ok = os.getpid() == me and stat_pid() == me
        os.write(wr, b"%d %d %d %d\n" % (n, os.getpid() if ok else -1, os.getppid(), me))


def main(log_path, ready_path, pidcheck, checklog):
    me = os.getpid()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    kid = os.fork()
    if kid == 0:
        os.close(w1)
        os.close(r2)
        child(r1, w2)
    os.close(r1)
    os.close(w2)
    checker = os.fork()
    if checker == 0:
        os.execv(pidcheck, [pidcheck, checklog])
    with open(log_path, "a", buffering=1) as log:
        tmp = ready_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % me)
        os.rename(tmp, ready_path)
        n = 0
        while True:
            n += 1
            os.write(w1, b"%d" % n)
            ans = os.read(r2, 128).split()
            good = (len(ans) == 4 and int(ans[0]) == n and int(ans[1]) == kid
                    and int(ans[2]) == me and os.getpid() == me and stat_pid() == me)
            if good:
                log.write("ok n=%d pid=%d kid=%d checker=%d\n" % (n, me, kid, checker))
            else:
                log.write("BAD n=%d answer=%r getpid=%d stat=%d want pid=%d kid=%d\n"
                          % (n, ans, os.getpid(), stat_pid(), me, kid))
            time.sleep(0.1)


if __name__ == "__main__":
    main(*sys.argv[1:5])
