#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Out-of-band bytes and fds in flight on unix stream sockets, for
tests/e2e/test_unix_oob.sh.

unixoob.py DIR LOG READY
    Before READY, for each case below, two socketpairs (one per way of
    reading them) get the case's sends, nothing received (except where a
    case receives its out-of-band byte first):
      mid       "ab", "c" with MSG_OOB, "de"
      head      "x" with MSG_OOB, "yz" (a peek does not show the byte)
      twice     "ab", "c" with MSG_OOB, "d" with MSG_OOB, "e" (c is in
                line again, d is the mark)
      inline    as mid, the receiver with SO_OOBINLINE
      taken     as mid, "c" received with recv(MSG_OOB) at once
      fds       "pl", "o" with MSG_OOB, "fd" with a pipe's read end
                (SCM_RIGHTS), "tail"
      plainfds  "abc", "de" with a pipe's read end, "fg" with another
                (no out-of-band byte: where the sends with fds begin)
    Logs "ready", then writes its pid to READY. Once DIR/go exists, each case is read both ways
    on the pairs it kept, and on a pair made again the same way now, which
    was never checkpointed:
      oobfirst  each round: SIOCATMARK, recv(MSG_OOB), recvmsg of 100 bytes
      reads     each round: SIOCATMARK, recvmsg of 2 bytes
    (what each returned, with the bytes read from each fd received, until
    end of file: the senders are closed first), and the two
    transcripts must be the same: "ok CASE WAY", or "FAIL CASE WAY ..." with
    both. Then "DONE".
"""
import array
import errno
import fcntl
import os
import socket
import struct
import sys
import time

SIOCATMARK = 0x8905


def pipe_fd():
    r, w = os.pipe()
    os.write(w, b"p")
    os.close(w)
    return r


def sends(case):
    """Make a pair and queue the case on it; returns (sender, receiver, fds to close)."""
    a, b = socket.socketpair()
    extra = []
    oob = socket.MSG_OOB
    if case == "inline":
        b.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    steps = {
        "mid": [(b"ab", 0), (b"c", oob), (b"de", 0)],
        "head": [(b"x", oob), (b"yz", 0)],
        "twice": [(b"ab", 0), (b"c", oob), (b"d", oob), (b"e", 0)],
        "inline": [(b"ab", 0), (b"c", oob), (b"de", 0)],
        "taken": [(b"ab", 0), (b"c", oob), (b"de", 0)],
        "fds": [(b"pl", 0), (b"o", oob), (b"fd", "fd"), (b"tail", 0)],
        "plainfds": [(b"abc", 0), (b"de", "fd"), (b"fg", "fd")],
    }[case]
    for data, how in steps:
        if how == "fd":
            fd = pipe_fd()
            socket.send_fds(a, [data], [fd])
            os.close(fd)
        else:
            a.send(data, how)
    if case == "taken":
        assert b.recv(1, socket.MSG_OOB) == b"c"
    b.setblocking(False)
    return a, b


def observe(s, way):
    out = []
    for _ in range(20):
        mark = struct.unpack("i", fcntl.ioctl(s, SIOCATMARK, b"\0" * 4))[0]
        out.append("mark=%d" % mark)
        if way == "oobfirst":
            try:
                out.append("oob=%r" % s.recv(1, socket.MSG_OOB | socket.MSG_DONTWAIT))
            except OSError as e:
                out.append("oob:%s" % errno.errorcode.get(e.errno, e.errno))
        size = 100 if way == "oobfirst" else 2
        try:
            data, fds, flags, _ = socket.recv_fds(s, size, 8, socket.MSG_DONTWAIT)
        except BlockingIOError:
            out.append("EAGAIN")
            break
        got = []
        for fd in fds:
            got.append(os.read(fd, 10))
            os.close(fd)
        out.append("read=%r fds=%r" % (data, got))
        if not data:
            break
    return " ".join(out)


def main():
    d, log_path, ready = sys.argv[1:4]
    log = open(log_path, "a", buffering=1)
    cases = ["mid", "head", "twice", "inline", "taken", "fds", "plainfds"]
    ways = ["oobfirst", "reads"]
    kept = {(c, w): sends(c) for c in cases for w in ways}
    log.write("ready\n")
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    for c in cases:
        for w in ways:
            # both senders closed: the reads end at end of file
            a, b = kept[(c, w)]
            a.close()
            got = observe(b, w)
            a, b = sends(c)
            a.close()
            ref = observe(b, w)
            if got == ref:
                log.write("ok %s %s: %s\n" % (c, w, got))
            else:
                log.write("FAIL %s %s: restored %s; never checkpointed %s\n" % (c, w, got, ref))
    log.write("DONE\n")
    while True:
        time.sleep(1)


main()
