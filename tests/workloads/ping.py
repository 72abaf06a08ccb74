#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ICMP "ping" sockets (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6), for
tests/e2e/test_ping.sh; net.ipv4.ping_group_range must include our group.

ping DIR LOG READY [queued]
    IPv4: one socket bound (its echo identifier is its port), one connected
    to 127.0.0.1 with IP_TTL 7, one never used; IPv6: one bound to ::1.
    Once DIR/go exists checks that names, peers and the TTL are the same and
    that each bound or connected socket sends an echo request and reads the
    reply with its identifier and data; logs "ok ..." / "FAIL ..." and
    "ALL OK". With "queued": one more socket with a reply not read yet (the
    dump refuses it); once DIR/go exists it reads that reply first.
"""
import os
import socket
import struct
import sys
import time


def echo(s, fam, data, dst=None):
    req = struct.pack("!BBHHH", 8 if fam == socket.AF_INET else 128, 0, 0, 0, 1) + data
    if dst:
        s.sendto(req, dst)
    else:
        s.send(req)
    return reply(s, fam, data)


def reply(s, fam, data):
    s.settimeout(3)
    got = s.recv(200)
    typ, _, _, ident, _ = struct.unpack("!BBHHH", got[:8])
    if typ != (0 if fam == socket.AF_INET else 129) or got[8:] != data:
        raise RuntimeError("reply %r" % got)
    if ident != s.getsockname()[1]:
        raise RuntimeError("reply for identifier %d, ours is %d" % (ident, s.getsockname()[1]))


def main(d, log, ready, queued):
    out = open(log, "a", buffering=1)
    b4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    b4.bind(("127.0.0.1", 0))
    c4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    c4.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 7)
    c4.connect(("127.0.0.1", 0))
    u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    b6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
    b6.bind(("::1", 0))
    echo(b4, socket.AF_INET, b"before", ("127.0.0.1", 0))
    q = None
    if queued:
        q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        q.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"unread", ("127.0.0.1", 0))
    before = (b4.getsockname(), c4.getsockname(),
              c4.getsockopt(socket.IPPROTO_IP, socket.IP_TTL), u4.getsockname(),
              b6.getsockname()[:2])
    out.write("before %r\n" % (before,))
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    try:
        if q:
            reply(q, socket.AF_INET, b"unread")
        now = (b4.getsockname(), c4.getsockname(),
               c4.getsockopt(socket.IPPROTO_IP, socket.IP_TTL), u4.getsockname(),
               b6.getsockname()[:2])
        if now != before:
            raise RuntimeError("%r, were %r" % (now, before))
        echo(b4, socket.AF_INET, b"bound v4", ("127.0.0.1", 0))
        echo(c4, socket.AF_INET, b"connected v4")
        echo(b6, socket.AF_INET6, b"bound v6", ("::1", 0))
        out.write("ALL OK\n")
    except Exception as ex:
        out.write("FAIL %s\n" % ex)
    while True:
        time.sleep(1)


main(sys.argv[1], sys.argv[2], sys.argv[3], len(sys.argv) > 4)
