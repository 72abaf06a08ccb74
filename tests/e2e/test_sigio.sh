#!/bin/bash
# SPDX-License-Identifier: MIT
# Signal-driven I/O state of an open file description (O_ASYNC, the SIGIO
# owner of F_SETOWN / F_SETOWN_EX, the signal of F_SETSIG) is restored
# exactly (restorer/sigio.c):
#  - tests/workloads/sigio.c: a pipe, a UDP socket and a pty master owned
#    by a thread that is not the main one, with F_SETSIG SIGRTMIN+1, and a
#    pipe owned by
#    the process group (plain SIGIO to the process and its child). Data the
#    test writes after restore reaches the right thread with the right
#    signal and si_fd, and both group members get SIGIO; the program checks
#    its fcntl state every 100 ms.
#  - fidelity sigio async|own|sig: each piece alone on a pipe; tty: a pty
#    master with O_ASYNC and no owner (setting O_ASYNC on a terminal makes
#    the caller its owner: the restore sets the owner, "none", after it).
#  - an owner outside the tree (the test's shell) is refused at dump,
#    naming pid, fd and owner, and the program runs on untouched.
#  - a forged owner (a pid not of the tree) is refused by the restorer.
. "$(dirname "$0")/lib.sh"

LOG=$T/sigio.log
diag_add "$LOG"

# trigger PID: one write into each pipe, one datagram to the socket
trigger()
{
	local pid=$1
	printf x >"/proc/$pid/fd/$PW" || fail "writing into the pipe of pid $pid"
	printf x >"/proc/$pid/fd/$GW" || fail "writing into the group's pipe of pid $pid"
	printf x >"/dev/udp/127.0.0.1/$PORT" || fail "sending to udp port $PORT"
	printf x >"/proc/$pid/fd/$PTS" || fail "writing into the pty slave of pid $pid"
}

expect_round()
{
	local n=$1
	wait_grep "$LOG" "^got pipe $n$"
	wait_grep "$LOG" "^got sock $n$"
	wait_grep "$LOG" "^got pty $n$"
	wait_grep "$LOG" "^grp main $n$"
	wait_grep "$LOG" "^grp child $n$"
}

start_workload S "$T/sigio.ready" -- "$WL/sigio" "$LOG" "$T/sigio.ready"
read -r _ _ _ WORKER _ _ PW _ _ PORT _ _ GW _ KID _ _ PTS <<<"$(grep '^setup ' "$LOG")"
[[ $PORT =~ ^[0-9]+$ && $KID =~ ^[0-9]+$ ]] || fail "bad setup line: $(grep '^setup ' "$LOG")"
wait_grep "$LOG" '^ok 1$'
trigger "$S"
expect_round 1

ckpt_dump "$S" "$T/img"
assert_gone "$S" "$KID"
# the new stage failing: rolled back, nothing left, then a restore works
CKPT_FAULT=restore-sigio ckptctl_run restore "$T/img" --json && fail "restore succeeded despite CKPT_FAULT=restore-sigio"
grep -q "stage sigio" "$ERR" || fail "restore-sigio: error does not name the stage: $(cat "$ERR")"
poll_for 3 gone "$S" "$KID" || fail "a failed restore left pid $S or $KID behind"
poll_for 3 no_stray_restorer || fail "a ckpt-restore process is still running after the failed restore"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$S" ]] || fail "restored as pid $RESTORED_PID, not $S"
[[ -d /proc/$S/task/$WORKER ]] || fail "thread $WORKER is gone"
lines=$(line_count "$LOG")
wait_for 10 "'ok' after restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok '"
trigger "$S"
expect_round 2
trigger "$S"
expect_round 3
grep '^bad' "$LOG" && fail "the workload saw a change"
kill_tree "$S"
log "thread owner, F_SETSIG, group owner: restored"

# each piece alone (fidelity.c sigio), restored
for what in async own sig tty; do
	FLOG=$T/$what.log
	diag_add "$FLOG"
	start_workload F "$T/$what.ready" -- "$WL/fidelity" sigio "$FLOG" "$T/$what.ready" "$what"
	[[ $what == own ]] && OWNPID=$F
	wait_grep "$FLOG" '^ok 1$'
	ckpt_dump "$F" "$T/$what.img"
	assert_gone "$F"
	ckpt_restore "$T/$what.img"
	lines=$(line_count "$FLOG")
	wait_for 10 "'ok' after restore" eval "tail -n +$((lines + 1)) '$FLOG' | grep -q '^ok '"
	grep '^bad' "$FLOG" && fail "$what: the workload saw a change"
	kill_tree "$F"
	log "$what: restored"
done

# an owner outside the tree: refused, the program runs on
FLOG=$T/outside.log
diag_add "$FLOG"
start_workload F "$T/outside.ready" -- "$WL/fidelity" sigio "$FLOG" "$T/outside.ready" outside
wait_grep "$FLOG" '^ok 1$'
ckptctl_run dump "$F" -D "$T/outside.img" && fail "dump of a pipe whose SIGIO owner is outside the tree succeeded"
grep -qE "pid $F: fd [0-9]+: its SIGIO owner \(F_SETOWN process $$\) is not a process of the tree" "$ERR" ||
	fail "outside: unexpected error: $(cat "$ERR")"
[[ ! -e $T/outside.img ]] || fail "a refused dump left $T/outside.img"
lines=$(line_count "$FLOG")
wait_for 10 "'ok' after the refused dump" eval "tail -n +$((lines + 1)) '$FLOG' | grep -q '^ok '"
grep '^bad' "$FLOG" && fail "outside: the workload saw a change"
assert_tree_running "$F"
kill_tree "$F"
log "outside owner: refused: $(head -c 200 "$ERR")"

# a forged owner: the restorer refuses it before making anything
cp -a "$T/own.img" "$T/forged.img"
FORGE() { "$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" "$@"; }
k=$(FORGE find "$T/forged.img" files.img 17.3 "$OWNPID" | head -n 1)
[[ -n $k ]] || fail "no entry of files.img has the SIGIO owner $OWNPID"
FORGE set "$T/forged.img" files.img "$k" 17.3 1 >/dev/null || fail "forging sigio.owner"
ckptctl_run restore "$T/forged.img" && fail "restore of a forged SIGIO owner succeeded"
grep -q "field sigio.owner: process 1 is not one of the tree" "$ERR" ||
	fail "forged: unexpected error: $(cat "$ERR")"
log "forged owner: refused: $(head -c 200 "$ERR")"
pass
