#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Unix socket names for tests/e2e/test_unix_names.sh.

unixname.py names DIR LOG READY
    Works in DIR/sub and holds:
    - a stream listener bound to the relative name "rel.sock";
    - a datagram socket bound to "reldg.sock" with a message queued (sent
      to the relative name);
    - a stream listener bound to DIR/stats.sock.PID.tmp, its socket file
      renamed to DIR/stats.sock and made mode 0660 (HAProxy's stats socket);
    - a stream listener bound to "relren.tmp", renamed to "relren.sock".
    Logs "names ..." (getsockname of each) before READY. Once DIR/go exists:
    the names must be the same, the queued message there, then each
    listener accepts one client, reads "ping" and answers "pong NAME";
    "ok WHAT" / "FAIL WHAT" lines, then "DONE".
unixname.py lost DIR LOG READY
    A listener bound to "x.sock" in DIR/a, then the working directory
    changed to DIR/b: its socket file is nowhere the dump looks (refused).
"""
import os
import socket
import sys
import time


def ready_file(path):
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(path + ".tmp", path)


def name(s):
    n = s.getsockname()
    return n.decode() if isinstance(n, bytes) else n


def names(d, logpath, ready):
    log = open(logpath, "a", buffering=1)
    sub = os.path.join(d, "sub")
    os.makedirs(sub, exist_ok=True)
    os.chdir(sub)
    rel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rel.bind("rel.sock")
    rel.listen(4)
    dg = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dg.bind("reldg.sock")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    c.sendto(b"hello relative", "reldg.sock")
    c.close()
    stats = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = os.path.join(d, "stats.sock.%d.tmp" % os.getpid())
    stats.bind(tmp)
    stats.listen(4)
    os.chmod(tmp, 0o660)
    os.rename(tmp, os.path.join(d, "stats.sock"))
    relren = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    relren.bind("relren.tmp")
    relren.listen(4)
    os.rename("relren.tmp", "relren.sock")
    socks = {"rel": rel, "dg": dg, "stats": stats, "relren": relren}
    before = {k: name(s) for k, s in socks.items()}
    log.write("names %s\n" % sorted(before.items()))
    ready_file(ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    after = {k: name(s) for k, s in socks.items()}
    log.write("after %s\n" % sorted(after.items()))
    log.write("%s names\n" % ("ok" if after == before else "FAIL"))
    log.write("%s cwd\n" % ("ok" if os.getcwd() == sub else "FAIL"))
    dg.settimeout(5)
    try:
        m = dg.recv(100)
        log.write("%s queued\n" % ("ok" if m == b"hello relative" else "FAIL"))
    except OSError as ex:
        log.write("FAIL queued %r\n" % ex)
    for k in ("rel", "stats", "relren"):
        s = socks[k]
        s.settimeout(20)
        try:
            a, _ = s.accept()
            a.settimeout(5)
            if a.recv(4) == b"ping":
                a.sendall(b"pong " + after[k].encode())
                log.write("ok accept %s\n" % k)
            else:
                log.write("FAIL accept %s: no ping\n" % k)
            a.close()
        except OSError as ex:
            log.write("FAIL accept %s %r\n" % (k, ex))
    log.write("DONE\n")
    while True:
        time.sleep(1)


def lost(d, logpath, ready):
    log = open(logpath, "a", buffering=1)
    for x in ("a", "b"):
        os.makedirs(os.path.join(d, x), exist_ok=True)
    os.chdir(os.path.join(d, "a"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("x.sock")
    s.listen(1)
    os.chdir(os.path.join(d, "b"))
    ready_file(ready)
    n = 0
    while True:
        n += 1
        log.write("alive %d\n" % n)
        time.sleep(0.1)


def main():
    os.closerange(3, 4096)
    {"names": names, "lost": lost}[sys.argv[1]](*sys.argv[2:5])


if __name__ == "__main__":
    main()
