#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Netlink sockets for tests/e2e/test_netlink.sh.

nlsock.py route DIR LOG READY
    A NETLINK_ROUTE socket bound to RTMGRP_LINK | RTMGRP_IPV4_IFADDR (the
    kernel picks the port id), group 33 (RTNLGRP_BRVLAN: past the 32 bits
    of bind) joined with NETLINK_ADD_MEMBERSHIP, NETLINK_EXT_ACK,
    NETLINK_PKTINFO and NETLINK_NO_ENOBUFS on, SO_RCVBUF set, O_NONBLOCK;
    a NETLINK_ROUTE socket never bound; and one connected to the first's
    port id (its default destination). Logs "port PORTID" and "state ..."
    before READY. Once DIR/go exists: the state must be the same (the
    connected one's name and peer too), then an RTM_GETLINK dump request
    is sent and its answer parsed ("lo" must be in it, every reply
    addressed to our port id), and a message sent without an address from
    the connected socket must reach the first from its port id; "ok WHAT"
    or "FAIL WHAT" lines, then "DONE".
nlsock.py queued LOG READY
    A NETLINK_ROUTE socket with the answer to an RTM_GETLINK request
    unread (a dump refuses it); logs "alive N" every 100 ms.
"""
import os
import socket
import struct
import sys
import time

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_PKTINFO = 3
NETLINK_NO_ENOBUFS = 5
NETLINK_LIST_MEMBERSHIPS = 9
NETLINK_EXT_ACK = 11
RTMGRP_LINK = 1
RTMGRP_IPV4_IFADDR = 0x10
RTNLGRP_BRVLAN = 33
RTM_GETLINK = 18
RTM_NEWLINK = 16
NLM_F_REQUEST = 1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
IFLA_IFNAME = 3


def ready_file(path):
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(path + ".tmp", path)


def getlink_request(s, seq):
    # nlmsghdr + struct ifinfomsg (16 bytes)
    body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
    hdr = struct.pack("IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    s.send(hdr + body)


def state(s):
    o = [s.getsockopt(SOL_NETLINK, x) for x in (NETLINK_EXT_ACK, NETLINK_PKTINFO, NETLINK_NO_ENOBUFS)]
    groups = s.getsockopt(SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, 16).rstrip(b"\0").hex()
    rcvbuf = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return "name=%s opts=%s groups=%s rcvbuf=%d blocking=%s" % (
        s.getsockname(), o, groups, rcvbuf, s.getblocking())


def dump_links(s, port, seq):
    """Every interface name of an RTM_GETLINK dump; checks the replies."""
    names = []
    s.setblocking(True)
    s.settimeout(5)
    while True:
        data = s.recv(1 << 16)
        off = 0
        while off + 16 <= len(data):
            ln, typ, _flags, rseq, rpid = struct.unpack_from("IHHII", data, off)
            if rseq != seq or rpid != port:
                raise RuntimeError("reply seq %d pid %d, expected %d %d" % (rseq, rpid, seq, port))
            if typ == NLMSG_DONE:
                return names
            if typ == NLMSG_ERROR:
                raise RuntimeError("error %d" % struct.unpack_from("i", data, off + 16))
            if typ == RTM_NEWLINK:
                a = off + 16 + 16
                while a + 4 <= off + ln:
                    alen, atyp = struct.unpack_from("HH", data, a)
                    if alen < 4:
                        break
                    if atyp == IFLA_IFNAME:
                        names.append(data[a + 4:a + alen].rstrip(b"\0").decode())
                    a += (alen + 3) & ~3
            off += (ln + 3) & ~3


def route(d, logpath, ready):
    log = open(logpath, "a", buffering=1)
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 300000)
    s.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
    s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_BRVLAN)
    for opt in (NETLINK_EXT_ACK, NETLINK_PKTINFO, NETLINK_NO_ENOBUFS):
        s.setsockopt(SOL_NETLINK, opt, 1)
    s.setblocking(False)
    unbound = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    port = s.getsockname()[0]
    conn = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    conn.connect((port, 0))
    cbefore = (conn.getsockname(), conn.getpeername())
    before = state(s)
    ubefore = unbound.getsockname()
    log.write("port %d\nstate %s\nunbound %s\n" % (port, before, ubefore))
    ready_file(ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    after = state(s)
    log.write("after %s\n" % after)
    log.write("%s state\n" % ("ok" if after == before else "FAIL"))
    log.write("%s unbound\n" % ("ok" if unbound.getsockname() == ubefore else "FAIL"))
    cafter = (conn.getsockname(), conn.getpeername())
    log.write("connected %s -> %s\n" % (cbefore, cafter))
    log.write("%s connected\n" % ("ok" if cafter == cbefore else "FAIL"))
    try:
        getlink_request(s, 4242)
        names = dump_links(s, port, 4242)
        log.write("links %s\n" % " ".join(names))
        log.write("%s getlink\n" % ("ok" if "lo" in names else "FAIL"))
    except Exception as ex:  # noqa: BLE001 - logged for the test
        log.write("FAIL getlink %r\n" % ex)
    # the unbound one works too (sending binds it)
    try:
        getlink_request(unbound, 7)
        names = dump_links(unbound, unbound.getsockname()[0], 7)
        log.write("%s unbound getlink\n" % ("ok" if "lo" in names else "FAIL"))
    except Exception as ex:  # noqa: BLE001
        log.write("FAIL unbound getlink %r\n" % ex)
    # to its default destination: the first socket, from its own port id
    try:
        msg = struct.pack("IHHII", 20, 0x100, 0, 77, cbefore[0][0]) + b"ping"
        conn.send(msg)
        s.setblocking(True)
        s.settimeout(5)
        data, addr = s.recvfrom(1 << 16)
        good = data == msg and addr[0] == cbefore[0][0]
        log.write("%s connected send\n" % ("ok" if good else "FAIL (%r from %r)" % (data, addr)))
    except Exception as ex:  # noqa: BLE001
        log.write("FAIL connected send %r\n" % ex)
    log.write("DONE\n")
    while True:
        time.sleep(1)


def queued(logpath, ready):
    log = open(logpath, "a", buffering=1)
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    getlink_request(s, 1)
    time.sleep(0.1)
    ready_file(ready)
    n = 0
    while True:
        n += 1
        log.write("alive %d\n" % n)
        time.sleep(0.1)


def main():
    os.closerange(3, 4096)
    if sys.argv[1] == "route":
        route(*sys.argv[2:5])
    elif sys.argv[1] == "queued":
        queued(*sys.argv[2:4])
    else:
        sys.exit("usage: nlsock.py route DIR LOG READY | queued LOG READY")


if __name__ == "__main__":
    main()
