#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""inmapped.py DIR LOG READY

A program that maps DIR/data.bin privately (libc mmap through ctypes, the
file closed after), holds the FIFO DIR/fifo open with 6 bytes in it, and
watches both DIR and the file with inotify for opens, reads and closes
(IN_OPEN | IN_ACCESS | IN_CLOSE), as a program guarding its own files
would. Every event it reads is logged "event MASK NAME"; every 100 ms
"ok N CRC QUEUED" with the CRC32 of what it maps and the bytes in the
FIFO. A dump or a restore that opens, reads or closes one of them shows
as events the program never caused (tests/e2e/test_inotify_mapped.sh).
"""
import ctypes, fcntl, os, struct, sys, termios, time, zlib

d, log, ready = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
PROT_READ, PROT_WRITE, MAP_PRIVATE = 1, 2, 2
IN_NONBLOCK, IN_ACCESS, IN_OPEN, IN_CLOSE = 0o4000, 0x1, 0x20, 0x18
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def say(text):
    os.write(out, (text + "\n").encode())


path = os.path.join(d, "data.bin")
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
addr = libc.mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
os.close(fd)
if addr in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap: errno %d" % ctypes.get_errno())
ctypes.memset(addr, 0x5a, 4096)  # one page of its own (copy-on-write)
fifo = os.open(os.path.join(d, "fifo"), os.O_RDWR | os.O_NONBLOCK)
os.write(fifo, b"queued")
ino = libc.inotify_init1(IN_NONBLOCK)
for target in (d, path):
    if ino < 0 or libc.inotify_add_watch(ino, target.encode(), IN_ACCESS | IN_OPEN | IN_CLOSE) < 0:
        sys.exit("inotify: errno %d" % ctypes.get_errno())
say("start %d" % os.getpid())
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    try:
        buf = os.read(ino, 65536)
    except BlockingIOError:
        buf = b""
    while buf:
        wd, mask, cookie, length = struct.unpack_from("iIII", buf)
        name = buf[16:16 + length].rstrip(b"\0").decode() or "-"
        say("event %x %s" % (mask, name))
        buf = buf[16 + length:]
    n += 1
    queued = struct.unpack("i", fcntl.ioctl(fifo, termios.FIONREAD, b"\0" * 4))[0]
    say("ok %d %08x %d" % (n, zlib.crc32(ctypes.string_at(addr, size)), queued))
    time.sleep(0.1)
