# SPDX-License-Identifier: MIT
"""Inet socket state that no call reads back, for test_tcp_sockopts: the
dump must refuse it (naming pid, fd and why) and leave the program as it was.

usage: inetrefuse.py MODE READY GO; MODE one of
  urgread    a TCP connection with "ab", urgent "!", "cd" queued, the urgent
             byte read with MSG_OOB: reads stop at the mark ("ab", "cd");
  urginline  the same with SO_OOBINLINE: "ab", then "!cd";
  reuseport  a listener with SO_REUSEPORT and a classic BPF program for its
             group (SO_ATTACH_REUSEPORT_CBPF);
  flowlabel  a UDP socket that leased an IPv6 flow label (IPV6_FLOWLABEL_MGR);
  md5        a listener with a TCP_MD5SIG key;
  mcfilter   a UDP socket that joined a multicast group with a source
             filter (IP_ADD_SOURCE_MEMBERSHIP).
READY gets the pid once set up; once GO exists the program checks its state
and prints "ok MODE" or "BAD MODE ...".
"""
import ctypes
import os
import socket
import struct
import sys
import time

SO_ATTACH_REUSEPORT_CBPF, IPV6_FLOWLABEL_MGR, IPV6_FL_A_GET = 51, 32, 0
TCP_MD5SIG, IP_ADD_SOURCE_MEMBERSHIP = 14, 39


class Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]


def main():
    mode, ready, go = sys.argv[1:4]
    os.closerange(3, 4096)
    keep = []
    if mode in ("urgread", "urginline"):
        lst = socket.create_server(("127.0.0.1", 0))
        c = socket.create_connection(lst.getsockname())
        a, _ = lst.accept()
        if mode == "urginline":
            a.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        c.send(b"ab")
        c.send(b"!", socket.MSG_OOB)
        c.send(b"cd")
        time.sleep(0.2)
        if mode == "urgread" and a.recv(1, socket.MSG_OOB) != b"!":
            raise SystemExit("no urgent byte")
        keep += [lst, c, a]
    elif mode == "reuseport":
        r = socket.socket()
        r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        r.bind(("127.0.0.1", 0))
        r.listen(1)
        prog = (Filter * 1)(Filter(0x06, 0, 0, 0))  # ret #0: the first socket
        fp = Fprog(1, ctypes.cast(prog, ctypes.POINTER(Filter)))
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setsockopt(r.fileno(), socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
                           ctypes.byref(fp), ctypes.sizeof(fp)) < 0:
            raise SystemExit("SO_ATTACH_REUSEPORT_CBPF: errno %d" % ctypes.get_errno())
        keep.append(r)
    elif mode == "flowlabel":
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        # in6_flowlabel_req: dst, label, action GET, share EXCL, flags CREATE
        req = (socket.inet_pton(socket.AF_INET6, "::1") + struct.pack("!I", 0x12345) +
               struct.pack("BBHHHI", IPV6_FL_A_GET, 1, 1, 0, 0, 0))
        u.setsockopt(socket.IPPROTO_IPV6, IPV6_FLOWLABEL_MGR, req)
        keep.append(u)
    elif mode == "md5":
        lst = socket.create_server(("127.0.0.1", 0))
        # struct tcp_md5sig: the peer's sockaddr_storage, flags, prefix, key length, key
        sa = struct.pack("HH4s120x", socket.AF_INET, 0, socket.inet_aton("127.0.0.1"))
        lst.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG,
                       sa + struct.pack("BBHI80s", 0, 0, 6, 0, b"secret"))
        keep.append(lst)
    elif mode == "mcfilter":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP,
                     struct.pack("4s4s4s", socket.inet_aton("232.1.2.3"),
                                 socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")))
        keep.append(u)
    else:
        raise SystemExit("unknown mode " + mode)
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(go):
        time.sleep(0.05)
    bad = None
    if mode == "urgread":
        got = [keep[2].recv(10), keep[2].recv(10)]
        bad = None if got == [b"ab", b"cd"] else repr(got)
    elif mode == "urginline":
        got = [keep[2].recv(10), keep[2].recv(10)]
        bad = None if got == [b"ab", b"!cd"] else repr(got)
    print("BAD %s %s" % (mode, bad) if bad else "ok " + mode, flush=True)
    time.sleep(300)


if __name__ == "__main__":
    main()
