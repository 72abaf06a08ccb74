#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""delcwd.py DIR LOG READY

Makes DIR (mode 0751), goes into it, forks a child (which shares it as its
cwd), removes DIR. Both then log every 100 ms
  "<role> <pid> ino <inode of .> nlink <n> mode <octal> getcwd <error>"
where the inode is the same for both, nlink 0, mode 751, and getcwd fails
with ENOENT (the kernel's answer for a removed cwd).
"""
import os, sys, time

d, log, ready = sys.argv[1:4]
os.mkdir(d)
os.chmod(d, 0o751)
os.chdir(d)
role = "parent"
if os.fork() == 0:
    role = "child"
else:
    time.sleep(0.1)
    os.rmdir(d)
    with open(ready + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(ready + ".tmp", ready)
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
while True:
    st = os.stat(".")
    try:
        os.getcwd()
        err = "none"
    except OSError as e:
        err = os.strerror(e.errno).replace(" ", "_")
    line = f"{role} {os.getpid()} ino {st.st_ino} nlink {st.st_nlink} mode {oct(st.st_mode & 0o7777)[2:]} getcwd {err}\n"
    os.write(fd, line.encode())
    time.sleep(0.1)
