#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python threads whose combined output must continue across a restore.

    pythreads.py LOG READY       4 threading.Thread workers (a lock-protected
                                 shared dict, a Condition waiter, a sleeper,
                                 a busy counter) each log "<name> <k>" with
                                 their own k counting 1, 2, 3...; READY gets
                                 the pid once every thread has started.
    pythreads.py --verify LOG    every name's k counts 1, 2, 3... with no gap
                                 or reset; exit 1 if not.
"""
import os
import sys
import threading
import time

lock = threading.Lock()
cond = threading.Condition(lock)
shared = {"total": 0}


def logger(log, name):
    k = 0

    def emit(extra=""):
        nonlocal k
        k += 1
        with lock:
            log.write("%s %d %s\n" % (name, k, extra))
    return emit


def worker(log):
    emit = logger(log, "worker")
    while True:
        with lock:
            shared["total"] += 1
            shared[shared["total"]] = shared["total"] ** 2
            cond.notify_all()
        emit("total=%d" % shared["total"])
        time.sleep(0.05)


def waiter(log):
    emit = logger(log, "waiter")
    seen = 0
    while True:
        with cond:
            while shared["total"] < seen + 5:
                cond.wait()
            seen = shared["total"]
        emit("seen=%d" % seen)


def sleeper(log):
    emit = logger(log, "sleeper")
    while True:
        time.sleep(0.7)
        emit()


def busy(log):
    emit = logger(log, "busy")
    n = 0
    next_t = time.monotonic() + 0.3
    while True:
        n += 1
        if n % 1000 == 0 and time.monotonic() >= next_t:
            next_t += 0.3
            emit("n=%d" % n)


def run(log_path, ready_path):
    log = open(log_path, "a", buffering=1)
    for f in (worker, waiter, sleeper, busy):
        threading.Thread(target=f, args=(log,), name=f.__name__, daemon=True).start()
    time.sleep(0.3)
    tmp = ready_path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, ready_path)
    emit = logger(log, "main")
    while True:
        time.sleep(0.2)
        emit()


def verify(log_path):
    last = {}
    ok = True
    for i, line in enumerate(open(log_path), 1):
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            print("line %d: malformed: %r" % (i, line))
            return 1
        name, k = parts[0], int(parts[1])
        if k != last.get(name, 0) + 1:
            print("line %d: %s %d follows %d" % (i, name, k, last.get(name, 0)))
            ok = False
        last[name] = k
    print(" ".join("%s=%d" % kv for kv in sorted(last.items())))
    return 0 if ok and len(last) == 5 else 1


if __name__ == "__main__":
    if sys.argv[1] == "--verify":
        sys.exit(verify(sys.argv[2]))
    run(sys.argv[1], sys.argv[2])
