#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Half-closed TCP connections, for tests/e2e/test_tcp_halfclose.sh.

pairs DIR LOG READY
    Loopback connections with both ends in this program, each left in a
    state of its closing: FIN_WAIT2/CLOSE_WAIT (the client shut its side
    down), FIN_WAIT1 (data and FIN not sent: the peer's buffer is full),
    LAST_ACK (the same from the CLOSE_WAIT side), CLOSING (both FINs sent,
    the client's behind a full buffer), IPv4 and IPv6. Logs the states; once
    DIR/go exists checks the states again, then that each side reads what it
    would have read (all the data, then end of file) and that the CLOSE_WAIT
    side can still send; logs "ok ..." / "FAIL ..." and "ALL OK".
inflight DIR LOG READY
    One loopback pair whose client's data and FIN were sent but not
    acknowledged (FIN_WAIT1 with its FIN in flight): drops the accepted end's
    packets to the client (nftables table inet hctest_PID, which the test
    deletes after the restore), sends "in flight", shuts down. Once DIR/go exists logs "restored STATES";
    once DIR/go2 exists (the test stopped dropping) waits for the client's
    retransmitted FIN to be acknowledged (FIN_WAIT2), checks that the peer
    reads the data then end of file and that the client reads its reply;
    logs "ALL OK" or "FAIL ...".
server PORT READY LOG
    Accepts connections from outside-the-tree clients (client mode) and
    keeps them; the first one it shuts down for writing (server FIN_WAIT2,
    client CLOSE_WAIT). Once DIR/go exists: to each client that shut its
    side down (server CLOSE_WAIT) it sends "reply" and closes; from the
    other it reads until end of file and logs what it got.
client HOST PORT MODE OUT
    Outside the tree. MODE shut: sends "hello", shuts down its side, reads
    until end of file, logs "got ...". MODE peer: waits for the server's
    end of file, then sends "late data" and closes.
"""
import os
import socket
import subprocess
import sys
import time

STATES = {1: "ESTABLISHED", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 7: "CLOSE", 8: "CLOSE_WAIT",
          9: "LAST_ACK", 11: "CLOSING"}


def state(s):
    return STATES.get(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0], "?")


def conn(fam, host):
    lst = socket.socket(fam, socket.SOCK_STREAM)
    lst.bind((host, 0))
    lst.listen(1)
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    c.connect(lst.getsockname()[:2])
    a, _ = lst.accept()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    lst.close()
    return c, a


def fill(s):
    s.setblocking(False)
    data = b""
    while True:
        chunk = bytes([len(data) // 4096 % 251]) * 4096
        try:
            n = s.send(chunk)
        except BlockingIOError:
            time.sleep(0.05)
            try:
                n = s.send(chunk)
            except BlockingIOError:
                break
        data += chunk[:n]
    s.setblocking(True)
    return data


def read_all(s):
    s.settimeout(10)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d


def pairs(d, log, ready):
    out = open(log, "a", buffering=1)
    cases = []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        v = "v6" if fam == socket.AF_INET6 else "v4"
        c, a = conn(fam, host)       # FIN_WAIT2 / CLOSE_WAIT
        c.sendall(b"request")
        c.shutdown(socket.SHUT_WR)
        cases.append(("fw2 " + v, c, a, b"request", b""))
        c, a = conn(fam, host)       # FIN_WAIT1 (FIN unsent) / ESTABLISHED
        sent = fill(c)
        c.shutdown(socket.SHUT_WR)
        cases.append(("fw1 " + v, c, a, sent, None))
        c, a = conn(fam, host)       # FIN_WAIT2 / LAST_ACK (FIN unsent)
        c.shutdown(socket.SHUT_WR)
        sent_a = fill(a)
        a.shutdown(socket.SHUT_WR)
        cases.append(("lastack " + v, c, a, b"", sent_a))
        c, a = conn(fam, host)       # CLOSING / FIN_WAIT2
        sent = fill(c)
        c.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
        a.shutdown(socket.SHUT_WR)
        cases.append(("closing " + v, c, a, sent, b""))
    time.sleep(0.3)
    before = {}
    for name, c, a, _, _ in cases:
        before[name] = (state(c), state(a))
        out.write("%s: %s %s\n" % (name, *before[name]))
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    ok = True
    for name, c, a, c2a, a2c in cases:
        for _ in range(40):
            now = (state(c), state(a))
            if now == before[name]:
                break
            time.sleep(0.05)
        if now != before[name]:
            out.write("FAIL %s: states %s, were %s\n" % (name, now, before[name]))
            ok = False
            continue
        try:
            if name.startswith("fw2"):
                if read_all(a) != c2a:
                    raise RuntimeError("CLOSE_WAIT side: data or end of file")
                a.sendall(b"reply")
                a.close()
                if read_all(c) != b"reply":
                    raise RuntimeError("FIN_WAIT2 side: reply or end of file")
            elif name.startswith("fw1"):
                if read_all(a) != c2a:
                    raise RuntimeError("peer of FIN_WAIT1: data or end of file")
                a.sendall(b"back")
                a.close()
                if read_all(c) != b"back":
                    raise RuntimeError("FIN_WAIT1 side: data or end of file")
            elif name.startswith("lastack"):
                if read_all(a) != b"":
                    raise RuntimeError("LAST_ACK side: end of file")
                if read_all(c) != a2c:
                    raise RuntimeError("peer of LAST_ACK: data or end of file")
            else:
                if read_all(a) != c2a:
                    raise RuntimeError("peer of CLOSING: data or end of file")
                if read_all(c) != b"":
                    raise RuntimeError("CLOSING side: end of file")
            out.write("ok %s\n" % name)
        except Exception as ex:
            out.write("FAIL %s: %s\n" % (name, ex))
            ok = False
    out.write("ALL OK\n" if ok else "SOME FAILED\n")
    while True:
        time.sleep(1)


def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.05)


def inflight(d, log, ready):
    out = open(log, "a", buffering=1)
    c, a = conn(socket.AF_INET, "127.0.0.1")
    table = "hctest_%d" % os.getpid()
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        "add table inet %s\n"
        "add chain inet %s out { type filter hook output priority 0; }\n"
        "add rule inet %s out tcp sport %d tcp dport %d drop\n"
        % (table, table, table, a.getsockname()[1], c.getsockname()[1])))
    out.write("table %s\n" % table)
    c.sendall(b"in flight")
    c.shutdown(socket.SHUT_WR)
    time.sleep(0.3)
    out.write("states %s %s\n" % (state(c), state(a)))
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    wait_file(os.path.join(d, "go"))
    out.write("restored %s %s\n" % (state(c), state(a)))
    wait_file(os.path.join(d, "go2"))
    try:
        for _ in range(200):
            if state(c) == "FIN_WAIT2":
                break
            time.sleep(0.05)
        if state(c) != "FIN_WAIT2":
            raise RuntimeError("client in %s, not FIN_WAIT2" % state(c))
        if read_all(a) != b"in flight":
            raise RuntimeError("peer: data or end of file")
        a.sendall(b"reply")
        a.close()
        if read_all(c) != b"reply":
            raise RuntimeError("client: reply or end of file")
        out.write("ALL OK\n")
    except Exception as ex:
        out.write("FAIL %s\n" % ex)
    while True:
        time.sleep(1)


def server(port, d, ready, log):
    out = open(log, "a", buffering=1)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", port))
    lst.listen(4)
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    conns = []
    for i in range(2):
        s, _ = lst.accept()
        if i == 0:
            s.shutdown(socket.SHUT_WR)   # the client will send after our FIN
        conns.append(s)
        out.write("accepted %d\n" % i)
    time.sleep(0.3)
    out.write("states %s %s\n" % (state(conns[0]), state(conns[1])))
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    out.write("after %s %s\n" % (state(conns[0]), state(conns[1])))
    got = read_all(conns[1])
    conns[1].sendall(b"reply")
    conns[1].close()
    out.write("shut client sent %r\n" % got)
    got = read_all(conns[0])
    out.write("peer client sent %r\n" % got)
    while True:
        time.sleep(1)


def client(host, port, mode, out_path):
    out = open(out_path, "a", buffering=1)
    s = socket.create_connection((host, port))
    if mode == "peer":
        s.settimeout(60)
        if s.recv(10) != b"":
            out.write("FAIL no end of file\n")
            return
        out.write("eof\n")
        while not os.path.exists(out_path + ".go"):
            time.sleep(0.05)
        s.sendall(b"late data")
        s.close()
        out.write("closed\n")
        return
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    out.write("shut\n")
    s.settimeout(60)
    out.write("got %r\n" % read_all(s))


def main():
    if sys.argv[1] == "pairs":
        pairs(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "inflight":
        inflight(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "server":
        server(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])


main()
