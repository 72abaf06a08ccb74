#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""keyring.py LOG READY MODE

A program in a session keyring (keyrings(7)), as set up by MODE:

  plain     none of its own: the kernel falls back to its user's session
            keyring (_uid_ses.UID);
  empty     a new empty one of its own (KEYCTL_JOIN_SESSION_KEYRING, what
            `keyctl session` does);
  userlink  a new one linking its user's keyring (_uid.UID), as
            pam_keyinit makes at login;
  key       a new one holding a key of its own ("ckpt-test", permissions
            0x3f010000, as systemd gives a service its invocation_id);
  nested    a new one holding a keyring;
  quiet     none of its own, and never asks for it until SIGUSR1: then it
            forks a child that becomes nobody and logs its state ("late
            ..."): nobody's session keyring, unless something installed
            root's in the program meanwhile (a dump asking for it would);
  setuid    none of its own, and a child that becomes nobody (65534), as a
            daemon's workers do: each falls back to its own user's (the
            child logs "child ..." lines of the same fields).
  process   a process keyring (KEY_SPEC_PROCESS_KEYRING);
  thread    a thread with a thread keyring (KEY_SPEC_THREAD_KEYRING).

Every 200 ms it logs "now SERIAL DESCRIPTION links=A,B secret=S mine=M":
its session keyring's serial and description (type;uid;gid;perm;name),
the serials linked in it, what a search of its keyrings finds for a user
key described "root-secret" and for its own "ckpt-test" (with that key's
permissions; - when none); "ok N" every second; first "start PID ..."
with the same fields.
"""
import ctypes, os, sys, threading, time

log, ready, mode = sys.argv[1:4]
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
libc = ctypes.CDLL(None, use_errno=True)
SYS_add_key, SYS_keyctl = 248, 250
GET_KEYRING_ID, JOIN, SETPERM, DESCRIBE, LINK, SEARCH, READ = 0, 1, 5, 6, 8, 10, 11
THREAD, PROCESS, SESSION, USER = -1, -2, -3, -4
L = ctypes.c_long


def keyctl(op, *args):
    conv = [a if isinstance(a, (ctypes.Array, bytes)) else L(a) for a in args]
    r = libc.syscall(L(SYS_keyctl), L(op), *conv)
    return r if r >= 0 else -ctypes.get_errno()


def say(text):
    os.write(fd, (text + "\n").encode())


def payload(desc):
    found = keyctl(SEARCH, SESSION, b"user", desc, 0)
    if found <= 0:
        return "-"
    buf = ctypes.create_string_buffer(64)
    got = keyctl(READ, found, buf, 64)
    d = ctypes.create_string_buffer(256)
    keyctl(DESCRIBE, found, d, 256)
    return buf.raw[:max(got, 0)].decode(errors="replace") + "/" + d.value.decode().split(";")[3]


def state():
    sid = keyctl(GET_KEYRING_ID, SESSION, 0)
    desc = ctypes.create_string_buffer(256)
    keyctl(DESCRIBE, sid, desc, 256)
    links = (ctypes.c_int32 * 64)()
    n = keyctl(READ, SESSION, links, 256)
    secret = payload(b"root-secret").split("/")[0]
    linked = ",".join(str(links[i]) for i in range(min(max(n, 0) // 4, 64)))
    return "%d %s links=%s secret=%s mine=%s" % (sid, desc.value.decode(), linked, secret,
                                                payload(b"ckpt-test"))


if mode in ("empty", "userlink", "key", "nested"):
    if keyctl(JOIN, 0) < 0:
        sys.exit("KEYCTL_JOIN_SESSION_KEYRING failed")
if mode == "userlink" and keyctl(LINK, keyctl(GET_KEYRING_ID, USER, 1), SESSION) < 0:
    sys.exit("KEYCTL_LINK of the user keyring failed")
if mode == "key":
    k = libc.syscall(L(SYS_add_key), b"user", b"ckpt-test", b"secret", L(6), L(SESSION))
    if k < 0 or keyctl(SETPERM, k, 0x3f010000) < 0:
        sys.exit("add_key failed")
if mode == "nested":
    if libc.syscall(L(SYS_add_key), b"keyring", b"inner", None, L(0), L(SESSION)) < 0:
        sys.exit("add_key of a keyring failed")
if mode == "process" and keyctl(GET_KEYRING_ID, PROCESS, 1) < 0:
    sys.exit("a process keyring could not be made")
if mode == "thread":
    made = threading.Event()

    def keep():
        keyctl(GET_KEYRING_ID, THREAD, 1)
        made.set()
        while True:
            time.sleep(1)

    threading.Thread(target=keep, daemon=True).start()
    made.wait()

if mode == "quiet":
    import signal

    def late(sig, frame):
        if os.fork() == 0:
            os.setgid(65534)
            os.setuid(65534)
            say("late %s" % state())
            os._exit(0)

    signal.signal(signal.SIGUSR1, late)
    with open(ready + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(ready + ".tmp", ready)
    n = 0
    while True:
        if n % 5 == 0:
            say("ok %d" % (n // 5 + 1))
        n += 1
        time.sleep(0.2)
if mode == "setuid" and os.fork() == 0:
    os.setgid(65534)
    os.setuid(65534)
    say("child-start %d %s" % (os.getpid(), state()))
    while True:
        say("child %s" % state())
        time.sleep(0.2)
say("start %d %s" % (os.getpid(), state()))
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
n = 0
while True:
    say("now %s" % state())
    n += 1
    if n % 5 == 0:
        say("ok %d" % (n // 5))
    time.sleep(0.2)
