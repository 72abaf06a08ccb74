#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""deldir.py DIR LOG READY

Opens DIR (mode 0705) three ways — O_RDONLY (fd a), O_PATH (fd b, another
description), and a dup of a — then removes it, and logs every 100 ms
  "ino <a> <b> <dup> nlink <n> mode <octal> list <entries> create <error>"
(one inode for all three, link count 0, an empty listing, and creating a
file in it fails with ENOENT).
"""
import os, sys, time

d, log, ready = sys.argv[1:4]
os.mkdir(d)
os.chmod(d, 0o705)
a = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
b = os.open(d, os.O_PATH | os.O_DIRECTORY)
c = os.dup(a)
os.rmdir(d)
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
while True:
    sa, sb, sc = os.fstat(a), os.fstat(b), os.fstat(c)
    try:
        os.close(os.open("x", os.O_CREAT | os.O_WRONLY, dir_fd=a))
        err = "none"
    except OSError as e:
        err = os.strerror(e.errno).replace(" ", "_")
    same = "same" if sa.st_ino == sb.st_ino == sc.st_ino else "differ"
    line = f"ino {same} nlink {sa.st_nlink} mode {oct(sa.st_mode & 0o7777)[2:]} list {len(os.listdir(a))} create {err}\n"
    os.write(fd, line.encode())
    time.sleep(0.1)
