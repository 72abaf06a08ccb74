#!/bin/bash
# SPDX-License-Identifier: MIT
# TCP and UDP sockets (lib/kinds/inet.c, lib/netlock.c).
# tests/workloads/tcpecho.py: an echo server inside the tree (listening on
# 127.0.0.1 and ::1), clients outside it (not checkpointed) connected before
# the dump that keep sending during every dump and the dump-to-restore
# window:
#  - failed dumps (faults before and after the connections were locked and
#    put in repair mode; a netlink socket, refused) and --leave-running
#    leave every connection working;
#  - a dump that kills the server holds the connections (nftables lock);
#    failed restores keep holding them; after restore each client receives every byte echoed back, in order,
#    on the same connection; the server accepts new clients (v4 and v6);
#  - with --tcp-close (through ckptd) the connection is not held: the client sees it
#    closed, the restored server sees it reset and accepts new clients;
#  - a program with both ends of loopback connections (v4, v6) and data
#    unread both ways, one filled until nothing more fits (receive queue
#    full, data never sent in the send queue), one with IPv4-mapped
#    addresses on a dual-stack listener, a UDP socket with queued datagrams and a connected
#    UDP pair comes back with all of it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"
. "$(dirname "$0")/tcpecho_lib.sh"

PORT=$((20000 + RANDOM % 20000))
D=$T/work
mkdir -p "$D"

LOG=$T/server.log
diag_add "$LOG"
start_workload S "$T/server.ready" -- "$PYTHON" "$ECHO" server "$PORT" "$T/server.ready" "$LOG"
LOCKED_ROOTS+=("$S")
start_client c4 127.0.0.1
start_client c6 ::1
wait_for 10 "clients to connect" eval '[[ $(grep -c accepted "$LOG") == 2 ]]'
progressing c4
progressing c6

# Failed dumps: before the lock, with the connections locked and in repair
# mode, after everything was written. The connections keep working.
for step in inet-dump tcp-lock inet-repair dump-fds dump-write; do
	if CKPT_FAULT=$step ckptctl_run dump "$S" -D "$T/$step.img"; then
		fail "$step: dump succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: error does not name the step: $(cat "$ERR")"
	assert_running "$S"
	[[ ! -e $T/$step.img/inventory.img ]] || fail "$step: a failed dump left a checkpoint"
	lock_tables "$S" && fail "$step: a failed dump left its nftables lock"
	progressing c4
	progressing c6
done

# A real refusal: a socket of an unsupported family (netlink) in the server.
kill -USR1 "$S"
wait_grep "$LOG" 'netlink open'
ckptctl_run dump "$S" -D "$T/netlink.img" && fail "dump of a tree with a netlink socket succeeded"
grep -q 'netlink socket' "$ERR" || fail "refusal does not name the netlink socket: $(cat "$ERR")"
assert_running "$S"
lock_tables "$S" && fail "a refused dump left its nftables lock"
progressing c4
progressing c6
kill -USR2 "$S"
wait_grep "$LOG" 'netlink closed'

# --leave-running: the connections keep working.
ckpt_dump "$S" "$T/lr.img" --leave-running
assert_running "$S"
lock_tables "$S" && fail "--leave-running left its nftables lock"
progressing c4
progressing c6

# The clients' data arriving while the dump asks a connection for an
# urgent mark (before the lock; CKPT_FAULT=inet-urgent-gap waits 50 ms
# between the two counts of its queue) is no mark: asked again, not refused.
CKPT_FAULT=inet-urgent-gap ckpt_dump "$S" "$T/gap.img" --leave-running
assert_running "$S"
progressing c4
progressing c6

ckpt_dump "$S" "$T/tcp.img"
assert_tree_gone "$S"
lock_tables "$S" >/dev/null || fail "no nftables lock holds the connections after the dump"
"$CKPTCTL" show "$T/tcp.img" files.img >"$T/files.json" || fail "ckptctl show failed"
[[ $(grep -c '"lock_table"' "$T/files.json") == 2 ]] || fail "expected 2 locked connections in files.img"
# the clients keep sending while the server is gone; failed restores before
# the connections are made leave nothing and keep the lock for the next one
for step in inet-verify inet-open; do
	CKPT_FAULT=$step ckptctl_run restore "$T/tcp.img" --json && fail "$step: restore succeeded despite CKPT_FAULT"
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_gone "$S"
	lock_tables "$S" >/dev/null || fail "$step: a failed restore removed the lock"
done
sleep 0.5
ckpt_restore "$T/tcp.img"
[[ $RESTORED_PID == "$S" ]] || fail "restored pid $RESTORED_PID, dumped $S"
lock_tables "$S" && fail "the restore left the nftables lock"
progressing c4
progressing c6
"$PYTHON" "$ECHO" probe 127.0.0.1 "$PORT" | grep -q 'probe ok' || fail "a new IPv4 client got no echo"
"$PYTHON" "$ECHO" probe ::1 "$PORT" | grep -q 'probe ok' || fail "a new IPv6 client got no echo"
touch "$D/stop"
wait_grep "$D/c4.out" '^(ok|FAIL)' 60
wait_grep "$D/c6.out" '^(ok|FAIL)' 60
grep -q '^ok' "$D/c4.out" || fail "IPv4 client: $(tail -n 1 "$D/c4.out")"
grep -q '^ok' "$D/c6.out" || fail "IPv6 client: $(tail -n 1 "$D/c6.out")"
log "clients: $(tail -n 1 "$D/c4.out"), $(tail -n 1 "$D/c6.out") lines echoed"
kill_tree "$S"

# --tcp-close: the connection is not held; the client outside sees it closed
# and the restored server sees it reset; the server keeps accepting.
PORT2=$((PORT + 1))
start_workload S2 "$T/server2.ready" -- "$PYTHON" "$ECHO" server "$PORT2" "$T/server2.ready" "$T/server2.log"
LOCKED_ROOTS+=("$S2")
diag_add "$T/server2.log"
rm -f "$D/stop"
setsid "$PYTHON" "$ECHO" client 127.0.0.1 "$PORT2" "$D/stop" "$D/c9.out" </dev/null >"$D/c9.err" 2>&1 &
disown $!
diag_add "$D/c9.out"
wait_grep "$T/server2.log" accepted
progressing c9
# through ckptd: the option travels in the request
start_ckptd
ckpt_dump "$S2" "$T/close.img" --tcp-close
"$CKPTCTL" show "$T/close.img" files.img >"$T/close.json" || fail "ckptctl show failed"
grep -q '"closed": *true' "$T/close.json" || fail "--tcp-close: the connection is not saved as closed"
grep -q '"lock_table"' "$T/close.json" && fail "--tcp-close: a connection was locked"
lock_tables "$S2" && fail "--tcp-close: a lock table was made"
wait_grep "$D/c9.out" '^FAIL' 20
log "client after --tcp-close: $(grep FAIL "$D/c9.out")"
ckpt_restore "$T/close.img"
wait_grep "$T/server2.log" 'conn closed ECONNRESET' 10
"$PYTHON" "$ECHO" probe 127.0.0.1 "$PORT2" | grep -q 'probe ok' || fail "--tcp-close: a new client got no echo"
kill_tree "$S2"
stop_ckptd

# Both ends in the tree, UDP.
PLOG=$T/pair.log
diag_add "$PLOG"
start_workload P "$T/pair.ready" -- "$PYTHON" "$ECHO" pair "$D" "$PLOG" "$T/pair.ready"
LOCKED_ROOTS+=("$P")
wait_grep "$PLOG" queued
ckpt_dump "$P" "$T/pair.img"
assert_tree_gone "$P"
ckpt_restore "$T/pair.img"
touch "$D/go"
wait_grep "$PLOG" 'ALL OK|SOME FAILED' 30
grep -q 'ALL OK' "$PLOG" || fail "pair: $(grep FAIL "$PLOG")"
for what in "v4 loopback" "v6 loopback" "mapped" "bulk" "udp queue" "udp connected" "lone sockets"; do
	grep -qx "ok $what" "$PLOG" || fail "pair: no 'ok $what'"
done
lock_tables "$P" && fail "the restore left the nftables lock"
pass
