#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Socket options of TCP and UDP sockets, for tests/e2e/test_tcp_sockopts.sh.

sockopts DIR LOG READY
    Sets every option it knows to a value other than a new socket's on TCP
    listeners (v4, v6), both ends of loopback connections (v4, v6) and UDP
    sockets (v4, v6), attaches and locks classic BPF filters, shuts UDP
    sockets down, and keeps a TCP socket whose connection was reset (error
    read) and one whose connect was refused. Reads every value back and
    keeps it; once DIR/go exists it reads everything again and logs
    "FAIL ..." for each difference, then "ALL OK" or "SOME FAILED".
"""
import ctypes
import errno
import os
import socket
import struct
import sys
import time

SOL_SOCKET = socket.SOL_SOCKET
TCP = socket.IPPROTO_TCP
IP = socket.IPPROTO_IP
IP6 = socket.IPPROTO_IPV6
UDP = socket.IPPROTO_UDP
SO_PRIORITY, SO_BINDTODEVICE, SO_MARK, SO_BUF_LOCK = 12, 25, 36, 72
SO_ATTACH_FILTER, SO_LOCK_FILTER = 26, 44
TCP_CONGESTION, TCP_USER_TIMEOUT, TCP_NOTSENT_LOWAT = 13, 18, 25
TCP_FASTOPEN, TCP_SAVE_SYN, TCP_INQ, TCP_TX_DELAY = 23, 27, 36, 37
TCP_THIN_LINEAR_TIMEOUTS = 16
UDP_CORK, UDP_SEGMENT, UDP_GRO = 1, 103, 104
IP_FREEBIND, IP_RECVERR, IPV6_RECVERR, IPV6_TCLASS = 15, 11, 25, 67
SO_TIMESTAMPNS, SO_TIMESTAMPING, SO_PEEK_OFF, SO_SELECT_ERR_QUEUE = 35, 37, 42, 45
SO_BUSY_POLL, SO_PREFER_BUSY_POLL, SO_TXREHASH, SO_RCVMARK = 46, 69, 74, 75
IP_RECVOPTS, IP_RETOPTS, IP_RECVORIGDSTADDR, IP_MINTTL, IP_CHECKSUM = 6, 7, 20, 21, 23
IP_RECVFRAGSIZE, IP_LOCAL_PORT_RANGE = 25, 51
IPV6_RECVHOPOPTS, IPV6_RECVRTHDR, IPV6_RECVDSTOPTS, IPV6_RECVHOPLIMIT = 53, 56, 58, 51
IPV6_RECVPATHMTU, IPV6_DONTFRAG, IPV6_AUTOFLOWLABEL, IPV6_MINHOPCOUNT = 60, 62, 70, 73
IPV6_RECVORIGDSTADDR, IPV6_RECVFRAGSIZE = 74, 77

# (level, name, label, value); value: int, bytes (a name) or a struct's bytes
COMMON = [
    (IP, socket.IP_TOS, "IP_TOS", 0x10),
    (IP, socket.IP_TTL, "IP_TTL", 33),
    (IP, IP_RECVERR, "IP_RECVERR", 1),
    (SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY", 5),
    (SOL_SOCKET, SO_MARK, "SO_MARK", 42),
    (SOL_SOCKET, SO_BINDTODEVICE, "SO_BINDTODEVICE", b"lo"),
    (SOL_SOCKET, socket.SO_LINGER, "SO_LINGER", struct.pack("ii", 1, 7)),
    (SOL_SOCKET, socket.SO_BROADCAST, "SO_BROADCAST", 1),
    (SOL_SOCKET, socket.SO_OOBINLINE, "SO_OOBINLINE", 1),
    (SOL_SOCKET, socket.SO_RCVLOWAT, "SO_RCVLOWAT", 10),
    (SOL_SOCKET, socket.SO_SNDBUF, "SO_SNDBUF", 65536),
    (SOL_SOCKET, SO_BUF_LOCK, "SO_BUF_LOCK", 3),
    (SOL_SOCKET, socket.SO_KEEPALIVE, "SO_KEEPALIVE", 1),
    (SOL_SOCKET, SO_TIMESTAMPNS, "SO_TIMESTAMPNS", 1),
    (SOL_SOCKET, SO_TIMESTAMPING, "SO_TIMESTAMPING", 0x18),
    (SOL_SOCKET, SO_PEEK_OFF, "SO_PEEK_OFF", 0),
    (SOL_SOCKET, SO_SELECT_ERR_QUEUE, "SO_SELECT_ERR_QUEUE", 1),
    (SOL_SOCKET, SO_BUSY_POLL, "SO_BUSY_POLL", 50),
    (SOL_SOCKET, SO_PREFER_BUSY_POLL, "SO_PREFER_BUSY_POLL", 1),
    (SOL_SOCKET, SO_RCVMARK, "SO_RCVMARK", 1),
    (IP, IP_RECVOPTS, "IP_RECVOPTS", 1),
    (IP, IP_RETOPTS, "IP_RETOPTS", 1),
    (IP, IP_RECVORIGDSTADDR, "IP_RECVORIGDSTADDR", 1),
    (IP, IP_CHECKSUM, "IP_CHECKSUM", 1),
    (IP, IP_MINTTL, "IP_MINTTL", 5),
    (IP, IP_LOCAL_PORT_RANGE, "IP_LOCAL_PORT_RANGE", struct.pack("I", (60000 << 16) | 50000)),
]
# IP options sent with every packet: router alert
V4 = [
    (IP, socket.IP_OPTIONS, "IP_OPTIONS", b"\x94\x04\x00\x00"),
]
# extension headers sent with every packet: 8 bytes each, a PadN option
V6 = [
    (IP6, 54, "IPV6_HOPOPTS", bytes([17, 0, 1, 4, 0, 0, 0, 0])),
    (IP6, 59, "IPV6_DSTOPTS", bytes([17, 0, 1, 4, 0, 0, 0, 0])),
    (IP6, IPV6_TCLASS, "IPV6_TCLASS", 0x20),
    (IP6, socket.IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", 9),
    (IP6, IPV6_RECVERR, "IPV6_RECVERR", 1),
    (IP6, IPV6_RECVHOPLIMIT, "IPV6_RECVHOPLIMIT", 1),
    (IP6, IPV6_RECVRTHDR, "IPV6_RECVRTHDR", 1),
    (IP6, IPV6_RECVHOPOPTS, "IPV6_RECVHOPOPTS", 1),
    (IP6, IPV6_RECVDSTOPTS, "IPV6_RECVDSTOPTS", 1),
    (IP6, IPV6_AUTOFLOWLABEL, "IPV6_AUTOFLOWLABEL", 0),
    (IP6, IPV6_DONTFRAG, "IPV6_DONTFRAG", 1),
    (IP6, IPV6_RECVPATHMTU, "IPV6_RECVPATHMTU", 1),
    (IP6, IPV6_MINHOPCOUNT, "IPV6_MINHOPCOUNT", 5),
    (IP6, IPV6_RECVORIGDSTADDR, "IPV6_RECVORIGDSTADDR", 1),
]
# an interface index in network order; not with SO_BINDTODEVICE: on a
# socket of its own
UNICAST_IF = {False: [(IP, 50, "IP_UNICAST_IF", struct.pack("!I", 1))],
              True: [(IP6, 76, "IPV6_UNICAST_IF", struct.pack("!I", 1))]}
V6_UDP = [
    (IP6, socket.IPV6_MULTICAST_IF, "IPV6_MULTICAST_IF", 1),
]
TCP_ALL = [
    (TCP, socket.TCP_NODELAY, "TCP_NODELAY", 1),
    (TCP, socket.TCP_CORK, "TCP_CORK", 1),
    (TCP, socket.TCP_KEEPIDLE, "TCP_KEEPIDLE", 77),
    (TCP, socket.TCP_KEEPINTVL, "TCP_KEEPINTVL", 11),
    (TCP, socket.TCP_KEEPCNT, "TCP_KEEPCNT", 4),
    (TCP, socket.TCP_SYNCNT, "TCP_SYNCNT", 3),
    (TCP, socket.TCP_LINGER2, "TCP_LINGER2", 20),
    (TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", 12345),
    (TCP, TCP_CONGESTION, "TCP_CONGESTION", b"reno"),
    (TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT", 16384),
    (TCP, socket.TCP_WINDOW_CLAMP, "TCP_WINDOW_CLAMP", 40000),
    (TCP, TCP_THIN_LINEAR_TIMEOUTS, "TCP_THIN_LINEAR_TIMEOUTS", 1),
    (TCP, TCP_INQ, "TCP_INQ", 1),
    (TCP, TCP_TX_DELAY, "TCP_TX_DELAY", 100),
    (TCP, socket.TCP_QUICKACK, "TCP_QUICKACK", 0),
    (SOL_SOCKET, SO_TXREHASH, "SO_TXREHASH", 0),
]
LISTENER = [
    (TCP, socket.TCP_MAXSEG, "TCP_MAXSEG", 1200),
    (TCP, socket.TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT", 5),
    (TCP, TCP_FASTOPEN, "TCP_FASTOPEN", 5),
    (TCP, TCP_SAVE_SYN, "TCP_SAVE_SYN", 1),
]
UDP_ALL = [
    (IP, IP_FREEBIND, "IP_FREEBIND", 1),
    (UDP, UDP_SEGMENT, "UDP_SEGMENT", 1000),
    (UDP, UDP_GRO, "UDP_GRO", 1),
    (UDP, UDP_CORK, "UDP_CORK", 1),
    (IP, IP_RECVFRAGSIZE, "IP_RECVFRAGSIZE", 1),
]


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


libc = ctypes.CDLL(None, use_errno=True)


def attach_filter(s, lock):
    # ld len; ret a: accept every packet whole
    prog = (SockFilter * 2)(SockFilter(0x80, 0, 0, 0), SockFilter(0x16, 0, 0, 0))
    fp = SockFprog(2, prog)
    if libc.setsockopt(s.fileno(), SOL_SOCKET, SO_ATTACH_FILTER, ctypes.byref(fp),
                       ctypes.sizeof(fp)) != 0:
        raise OSError(ctypes.get_errno(), "SO_ATTACH_FILTER")
    if lock:
        s.setsockopt(SOL_SOCKET, SO_LOCK_FILTER, 1)


def get_filter(s):
    n = ctypes.c_uint32(0)
    libc.getsockopt(s.fileno(), SOL_SOCKET, SO_ATTACH_FILTER, None, ctypes.byref(n))
    buf = ctypes.create_string_buffer(max(n.value, 1) * 8)
    m = ctypes.c_uint32(n.value)
    libc.getsockopt(s.fileno(), SOL_SOCKET, SO_ATTACH_FILTER, buf, ctypes.byref(m))
    return buf.raw[:m.value * 8]


def read(s, level, name, value):
    if isinstance(value, bytes):
        return s.getsockopt(level, name, 64).rstrip(b"\0")
    return s.getsockopt(level, name)


def snapshot(s, opts):
    got = {}
    for level, name, label, value in opts:
        got[label] = read(s, level, name, value)
    got["SO_RCVBUF"] = s.getsockopt(SOL_SOCKET, socket.SO_RCVBUF)
    got["SO_REUSEADDR"] = s.getsockopt(SOL_SOCKET, socket.SO_REUSEADDR)
    got["filter"] = get_filter(s)
    got["SO_LOCK_FILTER"] = s.getsockopt(SOL_SOCKET, SO_LOCK_FILTER)
    return got


def setup(s, opts, out, name):
    for level, name_, label, value in opts:
        try:
            s.setsockopt(level, name_, value)
        except OSError as ex:
            out.write("setup %s: %s: %s\n" % (name, label, ex))
            raise


def main():
    d, log, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    out = open(log, "a", buffering=1)
    socks = []  # (name, socket, options)
    for fam, host, v6 in ((socket.AF_INET, "127.0.0.1", V4), (socket.AF_INET6, "::1", V6)):
        tag = "v6" if v6 is V6 else "v4"
        lst = socket.socket(fam, socket.SOCK_STREAM)
        opts = COMMON + v6 + TCP_ALL
        setup(lst, opts, out, "listener " + tag)
        attach_filter(lst, lock=False)
        lst.bind((host, 0))
        lst.listen(4)
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.connect(lst.getsockname()[:2])
        a, _ = lst.accept()
        # after the accept: TCP_DEFER_ACCEPT would hold it
        setup(lst, LISTENER, out, "listener " + tag)
        socks.append(("listener " + tag, lst, opts + LISTENER))
        opts = COMMON + v6 + TCP_ALL
        setup(c, opts, out, "client " + tag)
        setup(a, opts, out, "accepted " + tag)
        attach_filter(c, lock=True)
        socks.append(("client " + tag, c, opts))
        socks.append(("accepted " + tag, a, opts))
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u2 = socket.socket(fam, socket.SOCK_DGRAM)
        setup(u2, UNICAST_IF[v6 is V6], out, "udp-if " + tag)
        socks.append(("udp-if " + tag, u2, UNICAST_IF[v6 is V6]))
        opts = COMMON + v6 + UDP_ALL + (V6_UDP if v6 is V6 else [])
        setup(u, opts, out, "udp " + tag)
        attach_filter(u, lock=True)
        u.bind((host, 0))
        socks.append(("udp " + tag, u, opts))
    # shut down UDP sockets: one for reading (connected), one for writing
    ur = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ur.bind(("127.0.0.1", 0))
    ur.connect(socks[3][1].getsockname())
    ur.shutdown(socket.SHUT_RD)
    uw = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    uw.bind(("::1", 0))
    uw.connect(socks[7][1].getsockname()[:2])
    uw.shutdown(socket.SHUT_WR)
    # a TCP connection reset by its peer, the error read by the program
    rl = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    rl.bind(("127.0.0.1", 0))
    rl.listen(1)
    rs = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    rs.connect(rl.getsockname())
    ra, _ = rl.accept()
    ra.setsockopt(SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ra.close()
    rl.close()
    time.sleep(0.2)
    try:
        rs.recv(10)
        out.write("setup: no reset\n")
    except ConnectionResetError:
        pass
    # a TCP socket whose connect was refused
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        refused.connect(("127.0.0.1", 1))
    except ConnectionRefusedError:
        pass

    def shut_state():
        r = {}
        ur.setblocking(False)
        try:
            r["ur recv"] = ur.recv(10)
        except BlockingIOError:
            r["ur recv"] = "EAGAIN"
        try:
            uw.send(b"x")
            r["uw send"] = "sent"
        except OSError as ex:
            r["uw send"] = errno.errorcode[ex.errno]
        rs.setblocking(False)
        try:
            r["reset recv"] = rs.recv(10)
        except OSError as ex:
            r["reset recv"] = errno.errorcode[ex.errno]
        try:
            rs.send(b"x")
            r["reset send"] = "sent"
        except OSError as ex:
            r["reset send"] = errno.errorcode[ex.errno]
        r["reset error"] = rs.getsockopt(SOL_SOCKET, socket.SO_ERROR)
        r["reset state"] = rs.getsockopt(TCP, socket.TCP_INFO, 8)[0]
        r["refused state"] = refused.getsockopt(TCP, socket.TCP_INFO, 8)[0]
        r["refused error"] = refused.getsockopt(SOL_SOCKET, socket.SO_ERROR)
        return r

    before = {name: snapshot(s, opts) for name, s, opts in socks}
    before_shut = shut_state()
    for name, s, opts in socks:
        for level, name_, label, value in opts:
            if label in ("TCP_MAXSEG", "TCP_DEFER_ACCEPT", "SO_SNDBUF", "TCP_QUICKACK"):
                continue  # the kernel reports its own rounding of these
            want = value.rstrip(b"\0") if isinstance(value, bytes) else value
            if before[name][label] != want:
                out.write("setup %s: %s reads %r, set %r\n" % (name, label, before[name][label],
                                                                 want))
    out.write("ready\n")
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    ok = True
    for name, s, opts in socks:
        after = snapshot(s, opts)
        for label, value in before[name].items():
            if after[label] != value:
                out.write("FAIL %s: %s was %r, now %r\n" % (name, label, value, after[label]))
                ok = False
    after_shut = shut_state()
    for label, value in before_shut.items():
        if after_shut[label] != value:
            out.write("FAIL %s was %r, now %r\n" % (label, value, after_shut[label]))
            ok = False
    # the refused socket can connect again; the reset one cannot (EISCONN)
    try:
        refused.settimeout(5)
        refused.connect(socks[0][1].getsockname()[:2])
    except OSError as ex:
        out.write("FAIL refused socket: connect: %s\n" % ex)
        ok = False
    try:
        rs.connect(socks[0][1].getsockname()[:2])
        out.write("FAIL reset socket: connect succeeded\n")
        ok = False
    except OSError as ex:
        if ex.errno != errno.EISCONN:
            out.write("FAIL reset socket: connect: %s\n" % ex)
            ok = False
    out.write("ALL OK\n" if ok else "SOME FAILED\n")
    while True:
        time.sleep(1)


main()
