#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ckptd_rawreq.py SOCKET restore|dump DIR [PID]: send one request to ckptd
# with DIR opened O_PATH (what ckptctl never sends), print the final answer's
# status and error. Exit 0 if the status is 0. Used by test_ckptd_attack.sh.
import os, socket, struct, sys

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out

def field(tag, wire, payload):
    return varint(tag << 3 | wire) + payload

def parse(buf):
    i, out = 0, {}
    while i < len(buf):
        key, i = read_varint(buf, i)
        tag, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        else:
            v, i = buf[i:i + 4], i + 4
        out.setdefault(tag, v)
    return out

def read_varint(buf, i):
    n = s = 0
    while True:
        b = buf[i]; i += 1
        n |= (b & 0x7F) << s; s += 7
        if not b & 0x80:
            return n, i

# RAWREQ_ORPHAN=PIDFILE: the process that connects writes its pid there and
# exits; a child it leaves sends the request once it is gone (the pid ckptd
# saw with SO_PEERCRED is then free for another process), with DIR opened
# O_RDONLY as ckptctl would.
sock_path, kind, d = sys.argv[1:4]
orphan = os.environ.get("RAWREQ_ORPHAN")
fd = os.open(d, (os.O_RDONLY if orphan else os.O_PATH) | os.O_DIRECTORY)
if kind == "restore":
    # RAWREQ_CGROUPS=MODE: RestoreRequest.cgroups (tag 3)
    cg = os.environ.get("RAWREQ_CGROUPS", "").encode()
    rr = field(3, 2, varint(len(cg)) + cg) if cg else b""
    msg = field(1, 0, varint(1)) + field(2, 0, varint(3)) + field(4, 2, varint(len(rr)) + rr)
else:
    dump = field(1, 0, varint(int(sys.argv[4])))
    msg = field(1, 0, varint(1)) + field(2, 0, varint(2)) + field(3, 2, varint(len(dump)) + dump)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sock_path)
if orphan:
    parent = os.getpid()
    if os.fork():
        with open(orphan + ".tmp", "w") as f:
            f.write("%d\n" % parent)
        os.rename(orphan + ".tmp", orphan)
        os._exit(0)
    while os.getppid() == parent:
        pass
s.sendmsg([struct.pack("<I", len(msg)) + msg],
          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
while True:
    data = s.recv(65536)
    if not data:
        print("status none error connection closed")
        sys.exit(1)
    r = parse(data[4:])
    if 4 in r:
        continue  # progress
    st = r.get(2, 0)
    if st >= 1 << 31:
        st -= 1 << 64 if st >= 1 << 63 else 1 << 32
    print("status %d error %s" % (st, r.get(3, b"").decode(errors="replace")))
    sys.exit(0 if st == 0 else 1)
