#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A redis-cli-style client speaking RESP, for tests/e2e/test_tcp_redis.sh.

wait HOST PORT          until the server answers PING (10 s)
load HOST PORT N        SET key:I val:I for I < N, RPUSH list, HSET hash
check HOST PORT N       a new connection: every key of load is there
hold HOST PORT N DIR    one connection kept open: PING, then once DIR/go
                        exists, check on that same connection, INCR, log
"""
import os
import socket
import sys
import time


class Resp:
    def __init__(self, host, port):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect((host, port))
        self.buf = b""

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed by the server")
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def reply(self):
        l = self.line()
        t, rest = l[:1], l[1:]
        if t in (b"+", b":"):
            return int(rest) if t == b":" else rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                d = self.s.recv(65536)
                if not d:
                    raise ConnectionError("closed by the server")
                self.buf += d
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v.decode()
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError("bad reply %r" % l)

    def cmd(self, *args):
        self.send(*args)
        return self.reply()


def check(r, n):
    size = r.cmd("DBSIZE")
    if size < n + 2:
        return "DBSIZE %d, expected at least %d" % (size, n + 2)
    for i in range(0, n, max(1, n // 500)):
        v = r.cmd("GET", "key:%d" % i)
        if v != "val:%d" % i:
            return "key:%d is %r" % (i, v)
    if r.cmd("LRANGE", "list", 0, -1) != [str(i) for i in range(100)]:
        return "list differs"
    if r.cmd("HGET", "hash", "f42") != "v42":
        return "hash differs"
    return None


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "wait":
        end = time.time() + 10
        while True:
            try:
                if Resp(host, port).cmd("PING") == "PONG":
                    return 0
            except OSError:
                pass
            if time.time() > end:
                print("FAIL no PONG")
                return 1
            time.sleep(0.05)
    n = int(sys.argv[4])
    if mode == "load":
        r = Resp(host, port)
        for i in range(n):
            r.send("SET", "key:%d" % i, "val:%d" % i)
        for i in range(n):
            r.reply()
        r.cmd("RPUSH", "list", *range(100))
        for i in range(100):
            r.cmd("HSET", "hash", "f%d" % i, "v%d" % i)
        print("loaded", r.cmd("DBSIZE"))
        return 0
    if mode == "check":
        err = check(Resp(host, port), n)
        print("check", "ok" if not err else "FAIL " + err)
        return 1 if err else 0
    if mode == "hold":
        d = sys.argv[5]
        out = open(os.path.join(d, "hold.log"), "a", buffering=1)
        r = Resp(host, port)
        r.cmd("CLIENT", "SETNAME", "holder")
        out.write("connected %s\n" % r.cmd("PING"))
        while not os.path.exists(os.path.join(d, "go")):
            time.sleep(0.05)
        try:
            err = check(r, n)
            if not err and r.cmd("INCR", "counter") != 1:
                err = "INCR counter is not 1"
            if not err and r.cmd("CLIENT", "GETNAME") != "holder":
                err = "not the same connection (CLIENT GETNAME)"
        except Exception as ex:
            err = "%s: %s" % (type(ex).__name__, ex)
        out.write("ok old connection\n" if not err else "FAIL %s\n" % err)
        return 1 if err else 0


sys.exit(main())
