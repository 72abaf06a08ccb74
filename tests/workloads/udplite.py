#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""UDP-Lite sockets (RFC 3828), for tests/e2e/test_udplite.sh.

udplite DIR LOG READY
    IPv4 and IPv6: a bound socket with a minimum checksum coverage
    (UDPLITE_RECV_CSCOV) and two datagrams queued from a third socket
    (closed since, so that the restore can send them from its address), and a
    socket connected to another bound one with a partial coverage of its own
    (UDPLITE_SEND_CSCOV). Once DIR/go exists checks that names, peers and
    coverages are the same, that the queued datagrams are read with their
    source, that the connected socket still sends to its peer (the peer
    reads it from the connected socket's address) and that new datagrams
    arrive; logs "ok ..." / "FAIL ..." and "ALL OK".
"""
import os
import socket
import sys
import time

LITE, SEND_CSCOV, RECV_CSCOV = 136, 10, 11


def lite(fam, host):
    s = socket.socket(fam, socket.SOCK_DGRAM, LITE)
    s.bind((host, 0))
    return s


def main(d, log, ready):
    out = open(log, "a", buffering=1)
    cases = []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        r = lite(fam, host)
        r.setsockopt(LITE, RECV_CSCOV, 20)
        s = lite(fam, host)
        s.sendto(b"dgram one", r.getsockname())
        s.sendto(b"dgram two", r.getsockname())
        src = s.getsockname()  # closed: the restore can send from it again
        s.close()
        peer = lite(fam, host)
        c = lite(fam, host)
        c.setsockopt(LITE, SEND_CSCOV, 12)
        c.connect(peer.getsockname())
        cases.append((fam, r, src, peer, c))
    time.sleep(0.1)
    before = [(r.getsockname(), c.getsockname(), c.getpeername(),
               r.getsockopt(LITE, RECV_CSCOV), c.getsockopt(LITE, SEND_CSCOV))
              for _, r, _, _, c in cases]
    out.write("before %r\n" % before)
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    ok = True
    for (fam, r, sent_from, peer, c), b in zip(cases, before):
        name = "v6" if fam == socket.AF_INET6 else "v4"
        try:
            now = (r.getsockname(), c.getsockname(), c.getpeername(),
                   r.getsockopt(LITE, RECV_CSCOV), c.getsockopt(LITE, SEND_CSCOV))
            if now != b:
                raise RuntimeError("names or coverage %r, were %r" % (now, b))
            for r_, t in ((r, 3), (peer, 3)):
                r_.settimeout(t)
            for want in (b"dgram one", b"dgram two"):
                data, src = r.recvfrom(100)
                if data != want or src[:2] != sent_from[:2]:
                    raise RuntimeError("queued: %r from %r" % (data, src))
            c.send(b"after restore")
            data, src = peer.recvfrom(100)
            if data != b"after restore" or src[:2] != c.getsockname()[:2]:
                raise RuntimeError("connected: %r from %r" % (data, src))
            lite(fam, "::1" if fam == socket.AF_INET6 else "127.0.0.1").sendto(
                b"new", r.getsockname())
            if r.recvfrom(100)[0] != b"new":
                raise RuntimeError("new datagram")
            out.write("ok %s\n" % name)
        except Exception as ex:
            out.write("FAIL %s: %s\n" % (name, ex))
            ok = False
    out.write("ALL OK\n" if ok else "SOME FAILED\n")
    while True:
        time.sleep(1)


main(sys.argv[1], sys.argv[2], sys.argv[3])
