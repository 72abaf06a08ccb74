#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seed corpora of the fuzz targets (tests/fuzz/, docs/testing.md "Fuzzing").

    mkcorpus.py dir CKPTDIR OUTFILE     a checkpoint directory as one container
    mkcorpus.py image CKPTDIR OUTDIR    one seed per image: kind byte + file
    mkcorpus.py rpc OUTDIR              Request and Response frames

The container format is described in tests/fuzz/fuzz_common.h. Seeds are
kept small: page data is replaced by its page count, the inventory loses
its list of sums (the harness recomputes it), pipe data and other saved
bytes are cut to 64 bytes (cut data is still valid: at most the pipe's size).
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import imgforge  # noqa: E402  (schema-less protobuf wire format)

HEADER = 16
KINDS = ["inventory", "pstree", "core", "mm", "pagemap", "pages", "files", "fds"]
# FileEntry fields whose sub-messages may hold saved bytes (pipe, unix_sk,
# inet_sk...): every bytes field inside them is cut
FILE_ENTRY_CONTENT = 11
CUT = 64


def kind_of(name):
    for i, k in enumerate(KINDS):
        if name == k + ".img" or (name.startswith(k + "-") and name.endswith(".img")):
            return i
    return None


def cut_bytes(buf, depth=0):
    """Cut long length-delimited fields, recursing into those that parse as messages."""
    try:
        fields = imgforge.parse(buf)
    except ValueError:
        return buf[:CUT]
    for f in fields:
        if f[1] != 2:
            continue
        inner = cut_bytes(f[2], depth + 1) if depth < 3 else f[2]
        if len(inner) > CUT:
            inner = inner[:CUT]
        f[2] = inner
    return imgforge.serialize(fields)


def shrink_files(data):
    out, pos = bytearray(data[:HEADER]), HEADER
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        rec = data[pos + 4:pos + 4 + n]
        pos += 4 + n
        fields = imgforge.parse(rec)
        for f in fields:
            if f[0] >= 20 and f[1] == 2:  # the kind's own sub-message
                f[2] = cut_bytes(f[2])
            elif f[0] == FILE_ENTRY_CONTENT:
                f[2] = f[2][:CUT]
        rec = imgforge.serialize(fields)
        out += struct.pack("<I", len(rec)) + rec
    return bytes(out)


def inventory_message(data):
    """Header + the Inventory without its sums (field 8)."""
    (n,) = struct.unpack_from("<I", data, HEADER)
    fields = [f for f in imgforge.parse(data[HEADER + 4:HEADER + 4 + n]) if f[0] != 8]
    return data[:HEADER], imgforge.serialize(fields)


def image_data(name, data):
    """The data of one image as the harnesses take it (fuzz_common.h)."""
    kind = KINDS[kind_of(name)]
    if kind == "pages":
        return data[:HEADER] + struct.pack("<I", (len(data) - 4096) // 4096)
    if kind == "inventory":
        head, msg = inventory_message(data)
        return head + msg
    if kind == "files":
        return shrink_files(data)
    return data


def images(ckptdir):
    for name in sorted(os.listdir(ckptdir)):
        if kind_of(name) is None:
            continue
        with open(os.path.join(ckptdir, name), "rb") as f:
            yield name, f.read()


def cmd_dir(ckptdir, out):
    buf = bytearray()
    for name, data in images(ckptdir):
        d = image_data(name, data)
        buf += bytes([len(name)]) + name.encode() + struct.pack("<I", len(d)) + d
    with open(out, "wb") as f:
        f.write(buf)
    print("%s: %d bytes" % (out, len(buf)))


def cmd_image(ckptdir, outdir):
    os.makedirs(outdir, exist_ok=True)
    tag = os.path.basename(os.path.normpath(ckptdir))
    for name, data in images(ckptdir):
        kind = kind_of(name)
        d = image_data(name, data)
        if KINDS[kind] == "inventory":  # the file as on disk (header, length, record)
            d = d[:HEADER] + struct.pack("<I", len(d) - HEADER) + d[HEADER:]
        out = os.path.join(outdir, "%s-%s" % (tag, name[:-4]))
        with open(out, "wb") as f:
            f.write(bytes([kind]) + d)


# ---- rpc frames (proto/rpc.proto) --------------------------------------------


def msg(*fields):
    """fields: (number, value): int -> varint, bytes/str -> length-delimited."""
    out = []
    for num, v in fields:
        if isinstance(v, int):
            out.append([num, 0, v])
        else:
            out.append([num, 2, v.encode() if isinstance(v, str) else v])
    return imgforge.serialize(out)


def frame(m):
    return struct.pack("<I", len(m)) + m


RPC_VERSION, RPC_DUMP, RPC_RESTORE, RPC_STATUS, RPC_CANCEL = 1, 2, 3, 4, 5
FD_NONE, FD_DIR, FD_FILE, FD_BOTH = 0, 1, 2, 3
RESPONSE, NO_FD = 4, 8


def rpc_seeds():
    job = msg((1, 7), (2, RPC_DUMP), (3, 2), (4, 1234), (5, 1000), (6, 1 << 20),
              (7, 1), (8, 1), (10, 1700000000000), (11, "pid 1234: fd 5: not supported"))
    return {
        "version": (FD_NONE, frame(msg((1, 1), (2, RPC_VERSION)))),
        "status": (FD_NONE, frame(msg((1, 1), (2, RPC_STATUS)))),
        "dump": (FD_DIR, frame(msg((1, 1), (2, RPC_DUMP),
                                   (3, msg((1, 1234), (2, 1), (4, "unix:4242"), (5, 1))),
                                   (6, 1)))),
        "dump-file-fd": (FD_FILE, frame(msg((1, 1), (2, RPC_DUMP), (3, msg((1, 1234)))))),
        "restore": (FD_DIR, frame(msg((1, 1), (2, RPC_RESTORE), (4, msg((2, 0)))))),
        "restore-two-fds": (FD_BOTH, frame(msg((1, 1), (2, RPC_RESTORE), (4, b"")))),
        "cancel": (FD_NONE, frame(msg((1, 1), (2, RPC_CANCEL), (5, msg((1, 7)))))),
        "cancel-with-fd": (FD_DIR, frame(msg((1, 1), (2, RPC_CANCEL), (5, msg((1, 7)))))),
        "version-2": (FD_NONE, frame(msg((1, 2), (2, RPC_VERSION)))),
        "bad-length": (FD_NONE, struct.pack("<I", 99) + msg((1, 1), (2, RPC_STATUS))),
        "resp-version": (RESPONSE | NO_FD, frame(msg((1, 1), (2, 0), (7, "0.1.0"),
                                                     (8, "tcp"), (8, "shell-job")))),
        "resp-progress": (RESPONSE | NO_FD, frame(msg((1, 1), (2, 0),
                                                      (4, msg((1, 7), (2, 4096), (3, 1),
                                                              (4, 4)))))),
        "resp-dump": (RESPONSE | NO_FD, frame(msg((1, 1), (2, 0), (5, job), (9, 4),
                                                  (10, 1 << 20)))),
        "resp-status": (RESPONSE, frame(msg((1, 1), (2, 0), (6, job), (6, job)))),
        "resp-error": (RESPONSE | NO_FD, frame(msg((1, 1), (2, (1 << 64) - 22),
                                                   (3, "pid 1 is not yours")))),
    }


def cmd_rpc(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, (flags, data) in rpc_seeds().items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(bytes([flags]) + data)


def main(argv):
    if len(argv) == 4 and argv[1] == "dir":
        cmd_dir(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "image":
        cmd_image(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "rpc":
        cmd_rpc(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
