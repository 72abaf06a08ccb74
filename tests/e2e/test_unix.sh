#!/bin/bash
# SPDX-License-Identifier: MIT
# Unix sockets (lib/kinds/unix.c, lib/sockdiag.c). tests/workloads/unixsk.c:
# a root and its child with a stream socketpair and a connection accepted
# from a listener bound to a path, both with 1000 numbered records queued
# each way; datagram and seqpacket socketpairs with 6 messages of different
# sizes queued each way; a listener on an abstract name; a listener with a
# connection from the child not yet accepted; a socketpair end whose peer
# is closed (the JVM's); SO_RCVBUF and SO_PASSCRED set; an O_NONBLOCK end.
#  - failed dumps (one after the queues were read) and --leave-running
#    consume nothing: every record and message is checked after restore;
#  - the images hold the queues both ways, message boundaries, the pending
#    connection, the closed peer and the options;
#  - restore faults leave nothing behind; after restore (same pids, the
#    killed program's stale socket file in place) every record and message
#    arrives exactly once, in order, the pending connection is accepted,
#    both listeners accept new clients, the options and flags are kept;
#  - more cases (tests/workloads/unixmore.py): a named datagram server with
#    a one-way client and messages from a named client and from a closed
#    socket with an abstract name (recvfrom names each sender), names of an accepted seqpacket connection, SHUT_WR
#    with data queued, SO_SNDTIMEO, SO_PEEK_OFF, a socket file removed after
#    bind;
#  - a datagram queued from a named socket outside the tree is refused;
#  - a socket connected to a server outside the tree is refused naming both
#    ends, and the program keeps running; with --external unix:INODE it is
#    saved: a stream comes back with its peer closed, a datagram socket
#    connected again to the server's name.
. "$(dirname "$0")/lib.sh"

[[ -x $WL/unixsk ]] || fail "$WL/unixsk not found: build first"

# unix_report DIR: one line per unix socket entry of files.img:
# "TYPE STATE QUEUE_SIZES(comma) nb=O_NONBLOCK peer_closed=B pending=B rcvbuf=N passcred=B name_mode=N"
unix_report()
{
	"$CKPTCTL" show "$1" files.img >"$T/show.json" || fail "ckptctl show $1 files.img failed"
	"$PYTHON" - "$T/show.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
docs = doc if isinstance(doc, list) else [doc]
for d in docs:
    for e in d.get("entries", []):
        u = e.get("unix_sk")
        if not u:
            continue
        sizes = [len(x) // 2 for x in u.get("queue", [])]
        msgs = [len(m.get("data", "")) // 2 for m in u.get("msgs", [])]
        if msgs:
            sizes = [sum(msgs)] if int(u["type"]) == 1 else msgs
        q = ",".join(str(x) for x in sizes) or "-"
        print(u["type"], u["state"], q, "nb=%d" % bool(int(e.get("flags", 0)) & 0o4000),
              "peer_closed=%d" % bool(u.get("peer_closed")),
              "pending=%d" % ("pending_on" in u),
              "rcvbuf=%d" % int(u.get("rcvbuf", 0)),
              "passcred=%d" % bool(u.get("passcred")),
              "name_mode=%o" % int(u.get("name_mode", 0)))
PY
}

no_fail() { ! grep -q FAIL "$1" || fail "the workload failed: $(grep FAIL "$1")"; }

LOG=$T/unix.log
D=$T/work
mkdir -p "$D"
diag_add "$LOG"
start_workload P "$T/unix.ready" -- "$WL/unixsk" tree "$D" "$LOG" "$T/unix.ready"
wait_grep "$LOG" queued
tree_snapshot "$P" >"$T/before"
[[ $(wc -l <"$T/before") == 2 ]] || fail "the workload is not 2 processes: $(cat "$T/before")"

# Failed dumps: one fails right after reading every queue; nothing is consumed.
for step in unix-dump unix-queue dump-fds dump-write; do
	if CKPT_FAULT=$step ckptctl_run dump "$P" -D "$T/$step.img"; then
		fail "$step: dump succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: error does not name the step: $(cat "$ERR")"
	assert_tree_running "$P"
	[[ ! -e $T/$step.img/inventory.img ]] || fail "$step: a failed dump left a checkpoint"
done
ckpt_dump "$P" "$T/lr.img" --leave-running
assert_tree_running "$P"
assert_same_tree "$T/before" "$P"
no_fail "$LOG"

ckpt_dump "$P" "$T/unix.img"
assert_tree_gone "$P"
unix_report "$T/unix.img" >"$T/report"
cat "$T/report"
# SOCK_STREAM=1 SOCK_DGRAM=2 SOCK_SEQPACKET=5; ESTABLISHED=1 LISTEN=10
[[ $(awk '$1 == 1 && $2 == 1 && $3 == 16000' "$T/report" | wc -l) == 4 ]] ||
	fail "expected 4 stream ends with 16000 queued bytes (both pairs, both ways)"
[[ $(awk '$1 == 2 && $3 == "1,38,75,112,149,186"' "$T/report" | wc -l) == 2 ]] ||
	fail "expected 2 datagram ends with 6 queued messages of their sizes"
[[ $(awk '$1 == 5 && $3 == "1,38,75,112,149,186"' "$T/report" | wc -l) == 2 ]] ||
	fail "expected 2 seqpacket ends with 6 queued messages of their sizes"
[[ $(awk '$1 == 2 && $4 == "nb=1"' "$T/report" | wc -l) == 1 ]] ||
	fail "expected one O_NONBLOCK datagram end"
[[ $(grep -c 'peer_closed=1' "$T/report") == 1 ]] || fail "expected one end with a closed peer"
[[ $(grep -c 'pending=1' "$T/report") == 1 ]] || fail "expected one pending connection"
[[ $(awk '$2 == 10' "$T/report" | wc -l) == 3 ]] || fail "expected 3 listening sockets"
grep -q 'rcvbuf=200000 passcred=1' "$T/report" || fail "SO_RCVBUF/SO_PASSCRED not saved"
grep -q 'name_mode=640' "$T/report" || fail "the socket file's mode 0640 not saved"

image_sums "$T/unix.img" >"$T/sums"
for step in unix-verify unix-open; do
	if CKPT_FAULT=$step ckptctl_run restore "$T/unix.img" --json; then
		fail "$step: restore succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/before"
done
image_sums "$T/unix.img" | diff -u "$T/sums" - || fail "the failed restores changed the images"

# the killed program's socket file is still there (stale): the restore reuses the name
[[ -S $D/srv.sock ]] || fail "expected the stale socket file $D/srv.sock"
ckpt_restore "$T/unix.img"
assert_same_tree "$T/before" "$P"
[[ $(stat -c %a "$D/srv.sock") == 640 ]] || fail "socket file mode $(stat -c %a "$D/srv.sock"), not 640"
touch "$D/go"
wait_grep "$LOG" 'ALL OK R' 20 || true
no_fail "$LOG"
grep -q 'ALL OK R' "$LOG" && grep -q 'ALL OK C' "$LOG" || fail "the workload did not finish: $(tail -n 5 "$LOG")"
for what in "C stream queues" "R stream queues" "C message queues" "R message queues" \
	"R pending connection" "R abstract listener" "R path listener" "R closed peer" "R options"; do
	grep -qx "ok $what" "$LOG" || fail "no 'ok $what' in the log"
done
log "after restore: every record and message once and in order, listeners, options: ok"
kill_tree "$P"
untrack "$P"

# ---- more cases (tests/workloads/unixmore.py) ---------------------------------------
# named datagram server with a one-way client, accepted seqpacket names,
# SHUT_WR with data, SO_SNDTIMEO, SO_PEEK_OFF, a socket file removed after bind
MLOG=$T/more.log
M=$T/more
mkdir -p "$M"
diag_add "$MLOG"
start_workload Q "$T/more.ready" -- "$PYTHON" "$WLSRC/unixmore.py" "$M" "$MLOG" "$T/more.ready"
ckpt_dump "$Q" "$T/more-lr.img" --leave-running
ckpt_dump "$Q" "$T/more.img"
assert_tree_gone "$Q"
ckpt_restore "$T/more.img"
assert_running "$Q"
touch "$M/go"
wait_grep "$MLOG" '^DONE' 20
no_fail "$MLOG"
[[ $(grep -c '^ok ' "$MLOG") == 19 ]] || fail "more: expected 19 ok lines: $(cat "$MLOG")"
log "more cases: $(grep -c '^ok ' "$MLOG") checks ok after restore"
kill_tree "$Q"
untrack "$Q"

# ---- a datagram from a named socket outside the tree --------------------------------
# the receiver would see no sender (or another one) after restore: refused
DGS=$T/ext-dg.sock
start_workload D "$T/dgs.ready" -- "$PYTHON" -c '
import os, socket, sys, time
os.closerange(3, 4096)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2], "w").write("%d\n" % os.getpid())
time.sleep(600)' "$DGS" "$T/dgs.ready"
"$PYTHON" -c '
import socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.bind(sys.argv[2])
c.sendto(b"hello", sys.argv[1])' "$DGS" "$T/ext-cl.sock" || fail "sending to $DGS failed"
ckptctl_run dump "$D" -D "$T/dgs.img" && fail "a datagram from a named socket outside the tree was dumped"
grep -q "pid $D: fd .*queued message 1 came from $T/ext-cl.sock, a socket outside the tree" "$ERR" ||
	{ cat "$ERR"; fail "named sender outside the tree: wrong error"; }
assert_running "$D"
log "refused: $(cat "$ERR")"
kill_tree "$D"
untrack "$D"

# ---- a socket connected to a server outside the tree ------------------------------
SRV=$T/outside.sock
start_workload S "$T/srv.ready" -- "$WL/unixsk" server "$SRV" "$T/srv.ready"
start_workload C "$T/cli.ready" -- "$WL/unixsk" client "$SRV" "$T/cli.ready"
if ckptctl_run dump "$C" -D "$T/out.img"; then
	fail "dump of a socket connected outside the tree succeeded"
fi
msg=$(cat "$ERR")
log "outside: refused: $msg"
[[ $msg == *"pid $C: fd "* ]] || fail "outside: the error does not name pid $C and its fd"
[[ $msg == *"$SRV"* ]] || fail "outside: the error does not name the server's socket $SRV"
[[ $msg == *"held by pid $S "* ]] || fail "outside: the error does not name the holder pid $S"
[[ $msg =~ socket:\[[0-9]+\].*socket:\[[0-9]+\] ]] || fail "outside: the error does not name both inodes"
[[ ! -e $T/out.img/inventory.img ]] || fail "outside: a refused dump left a checkpoint"
assert_running "$C"
# declared external (by the client's inode): saved; after restore the peer is gone
link=$(readlink "/proc/$C/fd/3")
ino=${link//[^0-9]/}
[[ $link == "socket:[$ino]" ]] || fail "outside: fd 3 of pid $C is $link"
[[ $msg == *"--external unix:"* ]] || fail "outside: the error does not tell about --external"
ckptctl_run dump "$C" -D "$T/bad.img" --external "unix:$ino" --external unix:1 &&
	fail "--external unix:1 (no such socket) accepted"
grep -q -- "--external unix:1" "$ERR" || fail "a useless --external is not named: $(cat "$ERR")"
assert_running "$C"
ckpt_dump "$C" "$T/out.img" --external "unix:$ino"
assert_tree_gone "$C"
ckpt_restore "$T/out.img"
assert_running "$C"
link=$(readlink "/proc/$C/fd/3")
# (ss -p finds a socket's holders by reading every process's fds: now and
# then it misses one that is there, so it is asked again)
[[ $link == socket:* ]] && poll_for 5 eval 'ss -xp | grep -q "pid=$C,fd=3"' ||
	fail "outside: restored fd 3 is not a unix socket: $link; ss: $(ss -xp | grep -F "pid=$C,")"
ss -x | awk -v i="${link//[^0-9]/}" '$6 == i && $8 == 0 { ok = 1 } END { exit !ok }' ||
	fail "outside: the restored external socket is not connected to a closed peer: $(ss -x | grep -w "${link//[^0-9]/}")"
log "outside: --external unix:$ino: dumped and restored with its peer gone"
kill_tree "$C"
kill_tree "$S"
untrack "$C"
untrack "$S"

# an external datagram socket: connected again to the outside peer's name
DSRV=$T/dg-outside.sock
start_workload DS "$T/ds.ready" -- "$WL/unixsk" dgserver "$DSRV" "$T/ds.ready" "$T/ds.out"
start_workload DC "$T/dc.ready" -- "$WL/unixsk" dgclient "$DSRV" "$T/dc.ready" "$T/dc.go"
link=$(readlink "/proc/$DC/fd/3")
ino=${link//[^0-9]/}
ckptctl_run dump "$DC" -D "$T/dg.img" && fail "dump of a datagram socket connected outside succeeded"
grep -q "$DSRV" "$ERR" || fail "outside datagram: the error does not name $DSRV: $(cat "$ERR")"
ckpt_dump "$DC" "$T/dg.img" --external "unix:$ino"
assert_tree_gone "$DC"
ckpt_restore "$T/dg.img"
touch "$T/dc.go"
wait_grep "$T/ds.out" '^msg2$' 10
log "outside datagram: --external: connected again to $DSRV, messages arrive"
kill_tree "$DC"
kill_tree "$DS"
untrack "$DC"
untrack "$DS"

# ---- a connection not yet accepted whose client already sent data: refused ----------
start_workload E "$T/emb.ready" -- "$PYTHON" -c '
import os, socket, sys, time
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind("\0ckpt-test-unix-emb-%d" % os.getpid())
l.listen(4)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect("\0ckpt-test-unix-emb-%d" % os.getpid())
c.send(b"early")
open(sys.argv[1] + ".tmp", "w").write(f"{os.getpid()}\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(1000)' "$T/emb.ready"
if ckptctl_run dump "$E" -D "$T/emb.img"; then
	fail "dump of a connection not yet accepted with data sent succeeded"
fi
msg=$(cat "$ERR")
log "data sent before accept: refused: $msg"
[[ $msg == *"pid $E: fd "* && $msg == *"sent data on a connection not yet accepted"* ]] ||
	fail "the refusal does not name the pid, the fd and the reason: $msg"
assert_running "$E"
kill_tree "$E"
untrack "$E"

# ---- the same, accepted while the dump waits (the tree resumed between tries) --------
# The program accepts on SIGUSR1 only; a pipe's read end in flight in a
# socketpair's queue is probed again on every try (the dump's own pidfd).
start_workload A "$T/acc.ready" --stdout "$T/acc.out" -- "$PYTHON" -c '
import os, signal, socket, sys, time
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind("\0ckpt-test-unix-acc-%d" % os.getpid())
l.listen(4)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect("\0ckpt-test-unix-acc-%d" % os.getpid())
c.send(b"early")
r, w = os.pipe()
os.write(w, b"piped")
a, b = socket.socketpair()
socket.send_fds(a, [b"fd"], [r])
os.close(r)
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append(l.accept()[0]))
open(sys.argv[1] + ".tmp", "w").write(f"{os.getpid()}\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while not got:
    time.sleep(0.01)
print("accepted", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
msg, fds, _, _ = socket.recv_fds(b, 10, 1)
print("data", got[0].recv(10).decode(), msg.decode(), os.read(fds[0], 10).decode(), flush=True)
time.sleep(1000)' "$T/acc.ready" "$T/acc.go"
CKPT_PAUSE=dump-retry:$T/acc.retry timeout -k 5 120 "$CKPTCTL" dump "$A" -D "$T/acc.img" >"$T/acc.dump.out" 2>"$T/acc.dump.err" &
DUMPER=$!
diag_add "$T/acc.dump.err"
wait_for 60 "the dump to wait for the accept (paused at dump-retry)" test -e "$T/acc.retry.paused"
assert_running "$A"
kill -USR1 "$A"
wait_grep "$T/acc.out" '^accepted'
touch "$T/acc.retry"
wait "$DUMPER" || fail "the dump failed once the connection was accepted: $(cat "$T/acc.dump.err")"
assert_tree_gone "$A"
ckpt_restore "$T/acc.img"
touch "$T/acc.go"
wait_grep "$T/acc.out" '^data'
grep -qx 'data early fd piped' "$T/acc.out" || fail "after restore: $(grep '^data' "$T/acc.out")"
log "accepted while the dump waited: restored with the bytes sent before accept and the fd in flight"
kill_tree "$A"
pass
