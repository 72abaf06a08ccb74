#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TCP/UDP workloads for tests/e2e/test_tcp.sh.

server PORT READY LOG [GATE]
    An echo server (checkpointed): listens on 127.0.0.1:PORT and [::1]:PORT,
    echoes every byte of every client back, accepts new clients at any time;
    with GATE, only while the file GATE exists (connections wait in the
    listener's accept queue meanwhile).
    Writes its pid to READY once listening. SIGUSR1 opens a generic netlink
    socket (a dump refuses it), SIGUSR2 closes it.
client HOST PORT STOP OUT
    A client outside the tree (not checkpointed): connects once, then sends
    numbered lines without pause until the file STOP exists, reading the
    echoes as they come; then waits for every echo. Every echoed byte must
    be what it sent, in order, on the one connection. Progress ("recv N")
    and the result ("ok SENT" or "FAIL ...") go to OUT.
probe HOST PORT
    Connect, send one line, expect it back (a new client of a restored server).
pair DIR LOG READY
    A program (checkpointed) with both ends of a loopback TCP connection
    (IPv4) and of an IPv6 one, data left unread in both directions; a UDP
    socket bound with datagrams queued from a UDP socket of the tree, and
    a connected UDP pair. Once DIR/go exists it checks everything and logs
    "ok ..." lines and "ALL OK".
"""
import errno
import os
import selectors
import signal
import socket
import sys
import time


def server(port, ready, log, gate=None):
    sel = selectors.DefaultSelector()
    lst = []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(16)
        s.setblocking(False)
        if gate is None:
            sel.register(s, selectors.EVENT_READ, "listen")
        lst.append(s)
    with open(log, "a") as f:
        f.write("listening %d\n" % port)
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    held = []

    def on_usr1(*_):
        # NETLINK_GENERIC (16): refused (NETLINK_ROUTE is supported)
        held.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16))
        with open(log, "a") as f:
            f.write("netlink open\n")

    def on_usr2(*_):
        while held:
            held.pop().close()
        with open(log, "a") as f:
            f.write("netlink closed\n")

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGUSR2, on_usr2)
    def accept(s):
        c, _ = s.accept()
        c.setblocking(True)
        sel.register(c, selectors.EVENT_READ, "conn")
        with open(log, "a") as f:
            f.write("accepted\n")

    while True:
        if gate is not None and os.path.exists(gate):
            for s in lst:
                while True:
                    try:
                        accept(s)
                    except BlockingIOError:
                        break
        for key, _ in sel.select(None if gate is None else 0.02):
            s = key.fileobj
            if key.data == "listen":
                accept(s)
                continue
            try:
                data = s.recv(65536)
                if data:
                    s.sendall(data)
                    continue
                why = "eof"
            except OSError as ex:
                why = errno.errorcode.get(ex.errno, str(ex.errno))
            with open(log, "a") as f:
                f.write("conn closed %s\n" % why)
            sel.unregister(s)
            s.close()


def client(host, port, stop, out):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.create_connection((host, port)) if fam == socket.AF_INET else None
    if s is None:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.connect((host, port))
    s.setblocking(False)
    sent = 0
    expect = b""
    got = 0
    last_report = 0
    deadline = None
    out_f = open(out, "a", buffering=1)
    buf = b""
    try:
        while True:
            stopping = os.path.exists(stop)
            if stopping and deadline is None:
                deadline = time.time() + 60
            if not stopping and len(buf) < 4096:
                sent += 1
                buf += b"%08d\n" % sent
            if buf:
                try:
                    n = s.send(buf)
                    expect += buf[:n]
                    buf = buf[n:]
                except BlockingIOError:
                    pass
                except ConnectionError as ex:
                    out_f.write("FAIL %s after %d bytes\n" % (ex, got))
                    return 1
            try:
                data = s.recv(65536)
                if not data:
                    out_f.write("FAIL connection closed after %d bytes\n" % got)
                    return 1
                if not expect.startswith(data):
                    out_f.write("FAIL corrupted echo at byte %d\n" % got)
                    return 1
                expect = expect[len(data):]
                got += len(data)
            except BlockingIOError:
                time.sleep(0.001)
            except ConnectionError as ex:
                out_f.write("FAIL %s after %d bytes\n" % (ex, got))
                return 1
            if got - last_report >= 9 * 100:
                last_report = got
                out_f.write("recv %d\n" % got)
            if stopping and not buf and not expect:
                out_f.write("ok %d\n" % sent)
                return 0
            if deadline and time.time() > deadline:
                out_f.write("FAIL %d bytes never echoed\n" % len(expect))
                return 1
    finally:
        out_f.close()


def probe(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((host, port))
    s.sendall(b"probe\n")
    data = b""
    while len(data) < 6:
        d = s.recv(100)
        if not d:
            break
        data += d
    print("probe", "ok" if data == b"probe\n" else "FAIL %r" % data)
    return 0 if data == b"probe\n" else 1


def tcp_pair(fam, host):
    lst = socket.socket(fam, socket.SOCK_STREAM)
    lst.bind((host, 0))
    lst.listen(1)
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.connect(lst.getsockname()[:2])
    a, _ = lst.accept()
    return lst, c, a


def pair(d, log, ready):
    out = open(log, "a", buffering=1)
    conns = []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        lst, c, a = tcp_pair(fam, host)
        c.sendall(b"c2a-" * 5000)   # unread at the dump
        a.sendall(b"a2c-" * 3000)
        conns.append((fam, lst, c, a))
    # a dual-stack listener and an IPv4 client: IPv4-mapped addresses
    ml = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ml.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ml.bind(("::", 0))
    ml.listen(1)
    mc = socket.create_connection(("127.0.0.1", ml.getsockname()[1]))
    ma, _ = ml.accept()
    mc.sendall(b"m2a" * 1000)
    ma.sendall(b"a2m" * 1000)
    # bulk: the sender writes until nothing more fits: the receiver's queue
    # is full and the sender's holds data never sent
    blst, bc, ba = tcp_pair(socket.AF_INET, "127.0.0.1")
    bc.setblocking(False)
    bulk = 0
    while True:
        chunk = bytes((bulk + i) % 251 for i in range(65536))
        try:
            n = bc.send(chunk)
        except BlockingIOError:
            time.sleep(0.05)
            try:
                n = bc.send(chunk)
            except BlockingIOError:
                break
        bulk += n
    bc.setblocking(True)
    out.write("bulk %d\n" % bulk)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    for i in range(5):
        sender.sendto(b"dgram %d " % i + b"x" * (i * 100), u.getsockname())
    cu1 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    cu1.bind(("::1", 0))
    cu2 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    cu2.bind(("::1", 0))
    cu1.connect(cu2.getsockname()[:2])
    cu2.connect(cu1.getsockname()[:2])
    cu1.send(b"to cu2")
    cu2.send(b"to cu1")
    lone_tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lone_udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    bound_tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    bound_tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bound_tcp.bind(("::1", 0))
    bound_name = bound_tcp.getsockname()
    out.write("queued\n")
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)

    def recv_exact(s, n):
        data = b""
        s.settimeout(10)
        while len(data) < n:
            x = s.recv(n - len(data))
            if not x:
                break
            data += x
        return data

    ok = True
    for fam, lst, c, a in conns:
        name = "v6" if fam == socket.AF_INET6 else "v4"
        if recv_exact(a, 20000) != b"c2a-" * 5000 or recv_exact(c, 12000) != b"a2c-" * 3000:
            out.write("FAIL %s loopback queues\n" % name)
            ok = False
            continue
        c.sendall(b"more")
        a.sendall(b"back")
        if recv_exact(a, 4) != b"more" or recv_exact(c, 4) != b"back":
            out.write("FAIL %s loopback after restore\n" % name)
            ok = False
            continue
        c2 = socket.socket(fam, socket.SOCK_STREAM)
        c2.settimeout(10)
        c2.connect(lst.getsockname()[:2])
        a2, _ = lst.accept()
        c2.sendall(b"new")
        if recv_exact(a2, 3) != b"new":
            out.write("FAIL %s listener\n" % name)
            ok = False
            continue
        out.write("ok %s loopback\n" % name)
    try:
        if recv_exact(ma, 3000) != b"m2a" * 1000 or recv_exact(mc, 3000) != b"a2m" * 1000:
            raise RuntimeError("queues differ")
        mc.sendall(b"x")
        if recv_exact(ma, 1) != b"x":
            raise RuntimeError("no data after restore")
        c3 = socket.create_connection(("127.0.0.1", ml.getsockname()[1]), timeout=5)
        a3, _ = ml.accept()
        c3.sendall(b"y")
        if recv_exact(a3, 1) != b"y":
            raise RuntimeError("dual-stack listener")
        out.write("ok mapped\n")
    except Exception as ex:
        out.write("FAIL mapped: %s\n" % ex)
        ok = False
    data = recv_exact(ba, bulk)
    if len(data) != bulk or data != bytes(i % 251 for i in range(bulk)):
        out.write("FAIL bulk: %d of %d bytes, or not in order\n" % (len(data), bulk))
        ok = False
    else:
        out.write("ok bulk\n")
    u.settimeout(5)
    for i in range(5):
        data, src = u.recvfrom(65536)
        if data != b"dgram %d " % i + b"x" * (i * 100):
            out.write("FAIL udp datagram %d: %r\n" % (i, data[:20]))
            ok = False
            break
    else:
        out.write("ok udp queue\n")
    cu1.settimeout(5)
    cu2.settimeout(5)
    if cu1.recv(100) != b"to cu1" or cu2.recv(100) != b"to cu2":
        out.write("FAIL connected udp queue\n")
        ok = False
    else:
        cu1.send(b"again")
        if cu2.recv(100) != b"again":
            out.write("FAIL connected udp after restore\n")
            ok = False
        else:
            out.write("ok udp connected\n")
    try:
        if bound_tcp.getsockname() != bound_name or \
                not bound_tcp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR):
            raise RuntimeError("bound socket: %r" % (bound_tcp.getsockname(),))
        bound_tcp.listen(1)
        lone_udp.sendto(b"x", cu1.getsockname()[:2])
        lone_tcp.settimeout(5)
        lone_tcp.connect(conns[0][1].getsockname()[:2])
        out.write("ok lone sockets\n")
    except Exception as ex:
        out.write("FAIL lone sockets: %s\n" % ex)
        ok = False
    out.write("ALL OK\n" if ok else "SOME FAILED\n")
    while True:
        time.sleep(1)


def main():
    mode = sys.argv[1]
    if mode == "server":
        server(int(sys.argv[2]), sys.argv[3], sys.argv[4], *sys.argv[5:6])
    elif mode == "client":
        sys.exit(client(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
    elif mode == "probe":
        sys.exit(probe(sys.argv[2], int(sys.argv[3])))
    elif mode == "pair":
        pair(sys.argv[2], sys.argv[3], sys.argv[4])


main()
