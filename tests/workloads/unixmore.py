#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""unixmore.py DIR LOG READY: more unix socket cases for test_unix.sh.

One process holds, before READY:
- a datagram server bound to DIR/dg.sock and an unnamed client connected
  to it (one way), 3 messages queued at the server; then one from a client
  bound to DIR/cl.sock (not connected) and one from a socket bound to an
  abstract name and closed since: recvfrom gives each sender's name, and
  the server can reply to the named client;
- a seqpacket listener on an abstract name, a client connected to it and
  accepted, messages queued both ways (names and peer names checked);
- a stream socketpair with data queued one way and that side shut down
  for writing (SHUT_WR): data then EOF, the other way still open;
- SO_SNDTIMEO set; a datagram pair with SO_PEEK_OFF at 2; SO_PASSPIDFD on
  a stream socket (a message sent after restore comes with a pidfd);
- a listener bound to DIR/gone.sock whose file was removed after bind.
Once DIR/go exists each case is checked: "ok WHAT" or "FAIL WHAT" lines,
then "DONE".
"""
import os
import socket
import struct
import sys
import time

SO_PEEK_OFF = 42
SO_PASSPIDFD, SCM_PIDFD = 76, 0x04

os.closerange(3, 4096)
d, logpath, ready = sys.argv[1:4]
log = open(logpath, "a", buffering=1)
abname = "\0ckpt-unixmore-%d" % os.getpid()
for p in ("dg.sock", "gone.sock", "cl.sock"):
    try:
        os.unlink(os.path.join(d, p))
    except FileNotFoundError:
        pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
srv.bind(os.path.join(d, "dg.sock"))
cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
cli.connect(os.path.join(d, "dg.sock"))
for i in range(3):
    cli.send(b"dg%d" % i * (i + 1))
ncli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ncli.bind(os.path.join(d, "cl.sock"))
ncli.sendto(b"from-named", os.path.join(d, "dg.sock"))
gname = b"\0ckpt-unixmore-gone-%d" % os.getpid()
g = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
g.bind(gname)
g.sendto(b"from-gone", os.path.join(d, "dg.sock"))
g.close()
lq = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
lq.bind(abname)
lq.listen(2)
c2 = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
c2.connect(abname)
a2, _ = lq.accept()
c2.send(b"to-acc-1")
c2.send(b"to-acc-22")
a2.send(b"to-cli-333")
s1, s2 = socket.socketpair()
s1.sendall(b"half-closed data")
s1.shutdown(socket.SHUT_WR)
s2.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 3, 500000))
p1, p2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
for m in (b"AAAA", b"BBBB", b"CCCC"):
    p2.send(m)
p1.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, 0)
p1.recv(2, socket.MSG_PEEK)  # the peek offset is now 2
q1, q2 = socket.socketpair()
q1.setsockopt(socket.SOL_SOCKET, SO_PASSPIDFD, 1)
gone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
gone.bind(os.path.join(d, "gone.sock"))
gone.listen(1)
os.unlink(os.path.join(d, "gone.sock"))

with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(ready + ".tmp", ready)
while not os.path.exists(os.path.join(d, "go")):
    time.sleep(0.05)


def ck(cond, what):
    log.write(("ok " if cond else "FAIL ") + what + "\n")


def name(x):
    return x if isinstance(x, bytes) else x.encode()


got = [srv.recvfrom(100) for _ in range(5)]
ck([m for m, _ in got] == [b"dg0", b"dg1dg1", b"dg2dg2dg2", b"from-named", b"from-gone"],
   "dgram server queue")
ck([a for _, a in got] == [None, None, None, os.path.join(d, "cl.sock"), gname],
   "dgram senders' names: %r" % [a for _, a in got])
srv.sendto(b"reply", got[3][1])
ck(ncli.recv(10) == b"reply", "dgram reply to a named sender")
cli.send(b"after")
ck(srv.recv(100) == b"after", "dgram client still connected")
ck(a2.recv(100) == b"to-acc-1" and a2.recv(100) == b"to-acc-22", "seqpacket accepted queue")
ck(c2.recv(100) == b"to-cli-333", "seqpacket client queue")
ck(name(c2.getpeername()) == name(abname), "seqpacket client's peer name")
ck(name(a2.getsockname()) == name(abname), "seqpacket accepted socket's name")
ck(s2.recv(100) == b"half-closed data" and s2.recv(100) == b"", "shut down stream: data then EOF")
s2.sendall(b"back")
ck(s1.recv(10) == b"back", "shut down stream: the other way open")
ck(struct.unpack("ll", s2.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)) == (3, 500000),
   "SO_SNDTIMEO")
ck(p1.getsockopt(socket.SOL_SOCKET, SO_PEEK_OFF) == 2, "SO_PEEK_OFF")
ck(p1.recv(10, socket.MSG_PEEK) == b"AA", "peek from offset 2")
p1.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, -1)
ck([p1.recv(10) for _ in range(3)] == [b"AAAA", b"BBBB", b"CCCC"], "dgram pair queue")
n = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
n.connect(abname)
x, _ = lq.accept()
n.send(b"new")
ck(x.recv(10) == b"new", "seqpacket listener accepts")
ck(not os.path.exists(os.path.join(d, "gone.sock")), "removed socket file stays removed")
ck(name(gone.getsockname()) == name(os.path.join(d, "gone.sock")), "removed socket file: name")
ck(q1.getsockopt(socket.SOL_SOCKET, SO_PASSPIDFD) == 1, "SO_PASSPIDFD")
q2.send(b"pidfd?")
msg, anc, _, _ = q1.recvmsg(10, socket.CMSG_SPACE(4))
ck(msg == b"pidfd?" and any(t == SCM_PIDFD for _, t, _ in anc), "SO_PASSPIDFD: a pidfd comes")
log.write("DONE\n")
while True:
    time.sleep(100)
