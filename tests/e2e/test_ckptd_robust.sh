#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptd robustness: garbage bytes, truncated and oversized frames, a frame
# whose length field lies, an unknown protocol version, a request with two
# fds, a client that never speaks and a flood of connections (more than the
# daemon keeps open) neither crash nor wedge it: a normal dump works after
# each, and it leaks no fd. Then the daemon under systemd-socket-activate
# (as ckptd.socket starts it): version, dump and restore through it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

start_ckptd --idle-timeout 2 --max-jobs 4

nfds() { ls "/proc/$CKPTD_PID/fd" | wc -l; }

# one normal dump + restore, checks the daemon is still serving
roundtrip()
{
	local tag=$1
	start_workload RT "$T/$tag.ready" -- "$WL/sleeper" pause "$T/$tag.log" "$T/$tag.ready"
	ckpt_dump "$RT" "$T/$tag.img" --leave-running
	assert_running "$RT"
	kill_tree "$RT"
	log "$tag: a normal dump works"
}

fds_before=$(nfds)
"$PYTHON" - "$SOCK" <<'PY' || fail "abuse script failed"
import os, socket, struct, sys, time
path = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.settimeout(5)
    return s

def answer(s):
    try:
        return s.recv(65536)
    except (socket.timeout, ConnectionResetError):
        return b""

def pb_varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def request(version, rtype):
    body = b"\x08" + pb_varint(version) + b"\x10" + pb_varint(rtype)
    return struct.pack("<I", len(body)) + body

cases = {
    "garbage": os.urandom(200),
    "empty": b"",
    "short length": b"\x01\x00",
    "length lies": struct.pack("<I", 1000) + b"\x08\x01",
    "oversized": struct.pack("<I", 200000) + b"x" * 199996,
    "unknown version": request(99, 1),
    "unknown type": request(1, 77),
    "dump without fd": request(1, 2),
}
for name, data in cases.items():
    s = conn()
    try:
        s.send(data)
    except OSError as e:
        print("%s: send failed (%s), fine" % (name, e))
    a = answer(s)
    print("%s: answered %d bytes" % (name, len(a)))
    s.close()

# two fds with a request
s = conn()
r1, w1 = os.pipe()
socket.send_fds(s, [request(1, 4)], [r1, w1])
print("two fds: answered %d bytes" % len(answer(s)))
s.close()
os.close(r1)
os.close(w1)

# the version request still answers, and names the version
s = conn()
s.send(request(1, 1))
a = answer(s)
assert len(a) > 4, "no answer to a version request"
print("version: %d bytes" % len(a))
s.close()

# a flood of silent connections, more than the daemon keeps open
flood = [conn() for _ in range(300)]
print("flood: %d connections open" % len(flood))
s = conn()
s.send(request(1, 1))
assert len(answer(s)) > 4, "no answer during the flood"
s.close()
for f in flood:
    f.close()
PY
assert_ckptd_alive
roundtrip after-abuse
# silent connections are closed after --idle-timeout 2
s_silent=$T/silent
"$PYTHON" -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.settimeout(10)
t = time.time()
d = s.recv(100)
print('closed after %.1f s' % (time.time() - t))
sys.exit(0 if d == b'' and time.time() - t < 9 else 1)
" "$SOCK" >"$s_silent" || fail "a silent connection was not closed by the idle timeout"
log "silent connection: $(cat "$s_silent")"
sleep 0.5
fds_after=$(nfds)
((fds_after <= fds_before)) || fail "ckptd leaks fds: $fds_before before, $fds_after after"
log "ckptd fds: $fds_before before, $fds_after after"
stop_ckptd

# --- sd_notify: READY=1 on $NOTIFY_SOCKET -------------------------------------
NOTIFY=$T/notify.sock
"$PYTHON" - "$NOTIFY" >"$T/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(15)
print(s.recv(4096).decode())
PY
npy=$!
notify_bound() { [[ -S $NOTIFY ]]; }
wait_for 10 "the notify socket" notify_bound
SOCK=$T/run2/ckptd.sock
NOTIFY_SOCKET=$NOTIFY start_ckptd
wait "$npy" || fail "no sd_notify message from ckptd"
grep -q '^READY=1' "$T/notify.out" || fail "sd_notify message is not READY=1: $(cat "$T/notify.out")"
log "sd_notify: $(tr '\n' ' ' <"$T/notify.out")"
stop_ckptd

# --- socket activation, as systemd would start it ----------------------------
ACT=$(command -v systemd-socket-activate) || fail "systemd-socket-activate not found (Debian package systemd)"
ASOCK=$T/act/ckptd.sock
mkdir -p "$T/act"
diag_add "$T/act.log"
"$ACT" -l "$ASOCK" --seqpacket "$CKPTD" 2>>"$T/act.log" &
APID=$!
disown "$APID"
TRACKED+=("$APID")
asock_ready() { [[ -S $ASOCK ]]; }
wait_for 10 "systemd-socket-activate to listen" asock_ready
export CKPT_SOCKET=$ASOCK
start_workload SA "$T/sa.ready" -- "$WL/sleeper" nanosleep "$T/sa.log" "$T/sa.ready" 1
ckpt_dump "$SA" "$T/sa.img"
assert_tree_gone "$SA"
ckpt_restore "$T/sa.img"
[[ $RESTORED_PID == "$SA" ]] || fail "socket activated: restored $RESTORED_PID, dumped $SA"
grep -q 'socket from systemd' "$T/act.log" || fail "ckptd did not take the socket from systemd: $(cat "$T/act.log")"
log "socket activated ckptd: dump and restore work"
kill_tree "$SA"
pass
