#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ptyrun.py OUT CTL -- CMD [ARGS...]

A terminal for the shell-job tests (what script(1) or an ssh session
would be): makes a pty, runs CMD on it as a session leader with the pty as
its controlling terminal (stdin, stdout, stderr), appends everything CMD
writes to the terminal to OUT, and "types" into the terminal whatever is
written to the FIFO CTL (a ^D byte is end of file in canonical mode). When CMD
exits, its status goes to OUT.status ("exit N" or "signal N") and the
driver exits. The master never leaves this process: CMD's tree sees the
terminal as driven from outside.
"""
import errno
import fcntl
import os
import select
import sys
import termios


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit("usage: ptyrun.py OUT CTL -- CMD [ARGS...]")
    out_path, ctl_path, cmd = sys.argv[1], sys.argv[2], sys.argv[4:]
    master, slave = os.openpty()
    pid = os.fork()
    if pid == 0:
        os.close(master)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
        os.closerange(3, 1024)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    os.close(slave)
    # O_RDWR: the FIFO never reads as end of file between writers
    ctl = os.open(ctl_path, os.O_RDWR | os.O_NONBLOCK)
    out = open(out_path, "ab", buffering=0)
    status = None
    end = 0
    master_open = True
    while True:
        fds = [ctl] + ([master] if master_open else [])
        r, _, _ = select.select(fds, [], [], 0.1)
        if master in r:
            try:
                data = os.read(master, 4096)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            if data:
                out.write(data)
            else:
                master_open = False  # every slave closed (EIO)
        if ctl in r:
            data = os.read(ctl, 4096)
            if data and master_open:
                os.write(master, data)
        if status is None:
            p, st = os.waitpid(pid, os.WNOHANG)
            if p == pid:
                status = st
        if status is not None:
            # drain what the terminal still holds, then leave
            end += 1
            if not master_open or end > 5:
                break
    if os.WIFSIGNALED(status):
        res = "signal %d" % os.WTERMSIG(status)
    else:
        res = "exit %d" % os.WEXITSTATUS(status)
    with open(out_path + ".status", "w") as f:
        f.write(res + "\n")


if __name__ == "__main__":
    main()
