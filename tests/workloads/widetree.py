#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A python3 root with N children, each holding state of its own, for
test_wide_tree.

    widetree.py N LOG READY
        each child fills 64 KiB with bytes of its own (os.urandom) and keeps
        their SHA-256; every 200 ms the root sends each child the round
        number over a pipe and the child answers "round pid ppid sha counter"
        (its counter counts the rounds it answered). The root checks the
        round, that the pid is the one fork gave and the parent the root,
        that the sha is the child's first one and the counter one more than
        last time, and writes "ok round R" or "BAD ..." to LOG. READY gets
        the root's pid, and on a second line the children's, once every
        child answered its first round.
"""
import hashlib
import os
import sys
import time


def child(rd, wr):
    buf = bytearray(os.urandom(64 << 10))
    sha = hashlib.sha256(buf).hexdigest()
    counter = 0
    f = os.fdopen(rd, "rb", buffering=0)
    while True:
        line = f.readline()
        if not line:
            os._exit(0)
        counter += 1
        msg = "%s %d %d %s %d\n" % (line.decode().strip(), os.getpid(), os.getppid(),
                                    hashlib.sha256(buf).hexdigest(), counter)
        os.write(wr, msg.encode())
        if sha != hashlib.sha256(buf).hexdigest():
            os._exit(3)


def main():
    n, log_path, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    root = os.getpid()
    kids = []  # (pid, to_child, from_child file, first sha, last counter)
    for _ in range(n):
        a_rd, a_wr = os.pipe()
        b_rd, b_wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            for k in kids:
                os.close(k[1])
                k[2].close()
            os.close(a_wr)
            os.close(b_rd)
            child(a_rd, b_wr)
        os.close(a_rd)
        os.close(b_wr)
        kids.append([pid, a_wr, os.fdopen(b_rd, "rb", buffering=0), None, 0])
    log = open(log_path, "a", buffering=1)
    rnd = 0
    while True:
        rnd += 1
        for k in kids:
            os.write(k[1], b"%d\n" % rnd)
        bad = []
        for k in kids:
            fields = k[2].readline().decode().split()
            if len(fields) != 5:
                bad.append("child %d: answer %r" % (k[0], fields))
                continue
            r, pid, ppid, sha, counter = int(fields[0]), int(fields[1]), int(fields[2]), \
                fields[3], int(fields[4])
            if k[3] is None:
                k[3] = sha
            if r != rnd or pid != k[0] or ppid != root or sha != k[3] or counter != k[4] + 1:
                bad.append("child %d: round %d pid %d ppid %d sha %s counter %d "
                           "(want round %d pid %d ppid %d sha %s counter %d)" %
                           (k[0], r, pid, ppid, sha[:12], counter, rnd, k[0], root,
                            k[3][:12], k[4] + 1))
            k[4] = counter
        log.write(("BAD round %d: %s\n" % (rnd, "; ".join(bad[:3]))) if bad else
                  "ok round %d\n" % rnd)
        if rnd == 1:
            with open(ready + ".tmp", "w") as f:
                f.write("%d\n%s\n" % (root, " ".join(str(k[0]) for k in kids)))
            os.rename(ready + ".tmp", ready)
        time.sleep(0.2)


main()
