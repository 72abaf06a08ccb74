#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""olink.py DIR LOG READY

Holds a handle on a symbolic link itself (O_PATH | O_NOFOLLOW on
DIR/link -> target) and logs every 100 ms "link <S_ISLNK> <target>" read
through the handle (readlinkat(fd, "")).
"""
import os, stat, sys, time

d, log, ready = sys.argv[1:4]
os.symlink("target-of-the-link", d + "/link")
fd = os.open(d + "/link", os.O_PATH | os.O_NOFOLLOW)
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
while True:
    st = os.stat(fd)  # fstat of the handle: the link itself
    os.write(out, f"link {int(stat.S_ISLNK(st.st_mode))} {os.readlink('', dir_fd=fd)}\n".encode())
    time.sleep(0.1)
