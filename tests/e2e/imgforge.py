#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Forge damaged checkpoint images that still pass the checksum check.

    imgforge.py sums DIR                   check our CRC32C matches the inventory
    imgforge.py mutate DIR FILE SEED       mutate one protobuf field of FILE
                                           (reproducible from SEED), then fix
                                           FILE's size and CRC32C in inventory.img

    imgforge.py find DIR FILE PATH VALUE   print the indices of the records of
                                           FILE whose field PATH equals VALUE
    imgforge.py get DIR FILE K PATH        print field PATH of record K
    imgforge.py set DIR FILE K PATH VALUE  set field PATH of record K (added
                                           if absent), fix the inventory
    imgforge.py drop DIR FILE K            remove record K, fix the inventory
    imgforge.py poke DIR FILE OFF U32      write U32 (little endian) at byte
                                           OFF of FILE (a header word of any
                                           image, pages too), fix the inventory
    imgforge.py seal DIR KEYFILE UID       write mac.img as ckptd would with that
                                           key (daemon/mac.h): for tests that
                                           play the part of ckptd's own images

PATH is field numbers joined by dots ("20.5": FileEntry.pipe.dev; "14@3.4":
field 4 of the fourth field 14, MmEntry.vmas[3].flags); VALUE
an integer (varint, or fixed where the field is) or s:TEXT (string or bytes). The targeted commands
make one precise forgery for a test; mutate makes random ones.

A flipped byte is caught by the inventory checksum before any parser sees
it. These mutations are not: the restorer's own field checks must refuse
them (or the restore must cope), never crash, never leave a half-restored
tree. Only the protobuf images are mutated, at the wire level (no schema):
a varint set to an edge value, a length-delimited field cut, padded or
mutated inside (when it parses as a message), a field dropped or repeated.
Image layout (lib/image.h): 16-byte header, then records of u32 LE length
+ packed message. Prints what it changed.
"""
import os
import random
import struct
import sys

HEADER = 16


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---- protobuf wire format ---------------------------------------------------


def read_varint(buf, pos):
    val = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, pos


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def parse(buf):
    """List of [field, wiretype, value]; raises ValueError if not a message."""
    fields, pos = [], 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field 0")
        if wt == 0:
            v, pos = read_varint(buf, pos)
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("length past end")
            v, pos = buf[pos:pos + n], pos + n
        else:
            raise ValueError("wire type %d" % wt)
        if pos > len(buf):
            raise ValueError("past end")
        fields.append([num, wt, v])
    return fields


def serialize(fields):
    out = bytearray()
    for num, wt, v in fields:
        out += varint(num << 3 | wt)
        if wt == 0:
            out += varint(v)
        elif wt == 2:
            out += varint(len(v)) + v
        else:
            out += v
    return bytes(out)


# ---- image files ------------------------------------------------------------


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    head, pos, recs = data[:HEADER], HEADER, []
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        recs.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return head, recs


def write_records(path, head, recs):
    data = bytearray(head)
    for r in recs:
        data += struct.pack("<I", len(r)) + r
    with open(path, "wb") as f:
        f.write(data)
    return bytes(data)


INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFFF, 0x1000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               1 << 32, 1 << 47, 0x7FFFFFFFFFFFFFFF, 1 << 63, (1 << 64) - 1, (1 << 64) - 4096]


def mutate_fields(fields, rng, depth, what):
    """Mutate one field of a parsed message in place; returns a description."""
    i = rng.randrange(len(fields))
    num, wt, v = fields[i]
    path = "%s.%d" % (what, num)
    choice = rng.random()
    if choice < 0.08:
        del fields[i]
        return "%s dropped" % path
    if choice < 0.14:
        fields.insert(i, list(fields[i]))
        return "%s repeated" % path
    if wt == 0:
        if rng.random() < 0.6:
            nv = rng.choice(INTERESTING)
        else:
            nv = (v ^ (1 << rng.randrange(64))) & ((1 << 64) - 1)
        fields[i][2] = nv
        return "%s varint %d -> %d" % (path, v, nv)
    if wt in (1, 5):
        b = bytearray(v)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        fields[i][2] = bytes(b)
        return "%s fixed bit flipped" % path
    # length-delimited: a nested message, a string or packed bytes
    if depth < 4 and v:
        try:
            sub = parse(v)
        except ValueError:
            sub = None
        if sub and rng.random() < 0.7:
            desc = mutate_fields(sub, rng, depth + 1, path)
            fields[i][2] = serialize(sub)
            return desc
    r = rng.random()
    if r < 0.4 and v:
        nv = v[:rng.randrange(len(v))]
        desc = "%s cut from %d to %d bytes" % (path, len(v), len(nv))
    elif r < 0.7:
        nv = v + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        desc = "%s padded from %d to %d bytes" % (path, len(v), len(nv))
    elif v:
        b = bytearray(v)
        b[rng.randrange(len(b))] = rng.randrange(256)
        nv = bytes(b)
        desc = "%s byte replaced" % path
    else:
        nv = b"\xff" * 8
        desc = "%s filled" % path
    fields[i][2] = nv
    return desc


def fix_inventory(d, name, data):
    """Record the new size and CRC32C of image `name` in inventory.img."""
    inv = os.path.join(d, "inventory.img")
    head, recs = read_records(inv)
    msg = parse(recs[0])
    for f in msg:
        if f[0] == 8 and f[1] == 2:  # Inventory.images: ImageSum
            s = parse(f[2])
            if any(x[0] == 1 and x[2] == name.encode() for x in s):
                for x in s:
                    if x[0] == 2:
                        x[2] = len(data)
                    elif x[0] == 3:
                        x[2] = crc32c(data)
                f[2] = serialize(s)
                break
    else:
        raise SystemExit("imgforge: %s is not listed in %s" % (name, inv))
    recs[0] = serialize(msg)
    write_records(inv, head, recs)


def inventory_sums(d):
    head, recs = read_records(os.path.join(d, "inventory.img"))
    sums = {}
    for f in parse(recs[0]):
        if f[0] == 8:
            s = {x[0]: x[2] for x in parse(f[2])}
            sums[s[1].decode()] = (s[2], s[3])
    return sums


def cmd_sums(d):
    bad = 0
    for name, (size, crc) in sorted(inventory_sums(d).items()):
        if name.startswith("pages-"):
            continue  # large: the C code checks those
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        ok = len(data) == size and crc32c(data) == crc
        bad += not ok
        print("%-24s %s" % (name, "ok" if ok else "MISMATCH"))
    return 1 if bad else 0


def cmd_mutate(d, name, seed):
    rng = random.Random("%s/%s" % (name, seed))
    path = os.path.join(d, name)
    head, recs = read_records(path)
    if not recs:
        raise SystemExit("imgforge: %s has no record" % name)
    for _ in range(20):
        k = rng.randrange(len(recs))
        try:
            fields = parse(recs[k])
        except ValueError:
            continue
        if not fields:
            continue
        desc = mutate_fields(fields, rng, 0, "%s[%d]" % (name, k))
        new = serialize(fields)
        if new != recs[k]:
            recs[k] = new
            break
    else:
        raise SystemExit("imgforge: nothing to mutate in %s" % name)
    data = write_records(path, head, recs)
    fix_inventory(d, name, data)
    print(desc)
    return 0


def _value(text):
    return text[2:].encode() if text.startswith("s:") else int(text, 0)


def _field(fields, path, create=False):
    """The [num, wt, value] list of PATH in fields (nested messages re-packed by the caller).

    An element NUM@K names the K-th (from 0) occurrence of a repeated field."""
    num, _, nth = path[0].partition("@")
    num, nth = int(num), int(nth or 0)
    for f in fields:
        if f[0] == num and nth:
            nth -= 1
            continue
        if f[0] == num:
            if len(path) == 1:
                return f
            sub = parse(f[2])
            hit = _field(sub, path[1:], create)
            # f[2] is stale until _repack serializes sub (serializing here
            # would fail on a sub with an expanded field of its own: depth 3)
            f.append(sub)
            return hit
    if not create:
        return None
    if len(path) == 1:
        fields.append([num, 0, 0])
        return fields[-1]
    raise SystemExit("imgforge: no field %d to descend into" % num)


def _repack(fields):
    """Serialize fields whose nested messages were expanded by _field."""
    for f in fields:
        if len(f) == 4:
            _repack(f[3])
            f[2] = serialize(f[3])
            del f[3]
    return serialize(fields)


def cmd_find(d, name, path, value):
    _, recs = read_records(os.path.join(d, name))
    want = _value(value)
    for k, r in enumerate(recs):
        f = _field(parse(r), path.split("."))
        if f is not None and f[2] == want:
            print(k)
    return 0


def cmd_get(d, name, k, path):
    _, recs = read_records(os.path.join(d, name))
    f = _field(parse(recs[int(k)]), path.split("."))
    if f is None:
        return 1
    print(f[2].decode(errors="replace") if isinstance(f[2], bytes) else f[2])
    return 0


def cmd_set(d, name, k, path, value):
    p = os.path.join(d, name)
    head, recs = read_records(p)
    fields = parse(recs[int(k)])
    f = _field(fields, path.split("."), create=True)
    v = _value(value)
    if isinstance(v, bytes):
        f[1], f[2] = 2, v
    elif f[1] in (1, 5):  # a fixed64 or fixed32 field stays one
        f[2] = (v & (1 << (64 if f[1] == 1 else 32)) - 1).to_bytes(8 if f[1] == 1 else 4, "little")
    else:
        f[1], f[2] = 0, v
    recs[int(k)] = _repack(fields)
    fix_inventory(d, name, write_records(p, head, recs))
    return 0


def cmd_drop(d, name, k):
    p = os.path.join(d, name)
    head, recs = read_records(p)
    del recs[int(k)]
    fix_inventory(d, name, write_records(p, head, recs))
    return 0


def cmd_poke(d, name, off, value):
    path = os.path.join(d, name)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    off = int(off, 0)
    data[off:off + 4] = struct.pack("<I", int(value, 0))
    with open(path, "wb") as f:
        f.write(data)
    fix_inventory(d, name, bytes(data))
    print("%s: u32 at %d set to %s" % (name, off, value))
    return 0


def cmd_seal(d, keyfile, uid):
    import hmac
    import hashlib
    with open(keyfile, "rb") as f:
        key = f.read()
    h = hmac.new(key, b"ckpt-mac-1" + struct.pack("<I", int(uid)), hashlib.sha256)
    with open(os.path.join(d, "inventory.img"), "rb") as f:
        h.update(f.read())
    _, recs = read_records(os.path.join(d, "inventory.img"))
    for fld in parse(recs[0]):
        if fld[0] == 8:
            name = {x[0]: x[2] for x in parse(fld[2])}[1].decode()
            with open(os.path.join(d, name), "rb") as f:
                h.update(f.read())
    with open(os.path.join(d, "mac.img"), "w") as f:
        f.write(h.hexdigest() + "\n")
    return 0


def main(argv):
    cmds = {"find": (4, cmd_find), "get": (4, cmd_get), "set": (5, cmd_set),
            "drop": (3, cmd_drop), "seal": (3, cmd_seal), "poke": (4, cmd_poke)}
    if len(argv) >= 2 and argv[1] in cmds and len(argv) == cmds[argv[1]][0] + 2:
        return cmds[argv[1]][1](*argv[2:])
    if len(argv) == 3 and argv[1] == "sums":
        return cmd_sums(argv[2])
    if len(argv) == 5 and argv[1] == "mutate":
        return cmd_mutate(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
