#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cloexec.py DIR LOG READY

Two fds of every kind the restorer makes with a kind's own open (regular
file, deleted file, directory, /dev/null, symbolic link, eventfd, epoll,
signalfd, timerfd, inotify, netlink socket), and of kinds it makes
together (pipe, unix socket pair, memfd): the first close-on-exec, the
second not. A child forked afterwards holds every fd at the same number,
with the other flag on a regular file's at fd 200 (a number the restorer
itself does not hold: the object is made there) and on a pipe's (one
object, two FD_CLOEXEC). Each process logs "fds <n> <its fds' FD_CLOEXEC bits>" every
100 ms to LOG (the test compares /proc/PID/fdinfo before and after);
READY holds the parent's pid once the child is there.
"""
import ctypes, os, select, signal, socket, sys, time

d, log_path, ready = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
O_CLOEXEC = 0o2000000


def made(fd, what):
    if fd < 0:
        raise OSError(ctypes.get_errno(), what)
    return fd


def pair(make):
    a, b = make(), make()
    os.set_inheritable(b, True)  # FD_CLOEXEC off
    return [a, b]


keep = []  # objects whose fds must stay open
fds = []
with open(d + "/data", "w") as f:
    f.write("0123456789")
fds += pair(lambda: os.open(d + "/data", os.O_RDONLY))
fds += pair(lambda: os.open(d + "/gone", os.O_RDWR | os.O_CREAT, 0o600))
os.unlink(d + "/gone")
fds += pair(lambda: os.open(d, os.O_RDONLY | os.O_DIRECTORY))
fds += pair(lambda: os.open("/dev/null", os.O_RDWR))
os.symlink("data", d + "/link")
fds += pair(lambda: os.open(d + "/link", os.O_PATH | os.O_NOFOLLOW))
fds += pair(lambda: os.eventfd(3, os.EFD_CLOEXEC))


def new_epoll():
    ep = select.epoll()
    keep.append(ep)
    return ep.fileno()


fds += pair(new_epoll)
mask = ctypes.c_uint64(1 << (signal.SIGUSR1 - 1))
fds += pair(lambda: made(libc.signalfd(-1, ctypes.byref(mask), O_CLOEXEC), "signalfd"))
fds += pair(lambda: made(libc.timerfd_create(1, O_CLOEXEC), "timerfd_create"))  # MONOTONIC
fds += pair(lambda: made(libc.inotify_init1(O_CLOEXEC), "inotify_init1"))


def new_netlink():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    keep.append(s)
    return s.fileno()


fds += pair(new_netlink)
r, w = os.pipe()
os.set_inheritable(w, True)
fds += [r, w]
a, b = socket.socketpair()
keep += [a, b]
os.set_inheritable(b.fileno(), True)
fds += [a.fileno(), b.fileno()]
fds += pair(lambda: os.memfd_create("cloexec"))
tmp = os.open(d + "/data", os.O_RDONLY)
fds.append(os.dup2(tmp, 200, inheritable=False))
os.close(tmp)

log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def run(who):
    n = 0
    while True:
        n += 1
        bits = "".join("0" if os.get_inheritable(fd) else "1" for fd in fds)
        os.write(log, f"{who} fds {n} {bits}\n".encode())
        time.sleep(0.1)


child = os.fork()
if child == 0:
    os.set_inheritable(200, True)  # here not close-on-exec
    os.set_inheritable(w, False)  # the pipe's write end: here close-on-exec
    run("child")
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
run("parent")
