#!/bin/bash
# SPDX-License-Identifier: MIT
# A tree holding a resource ckpt does not support yet (a pipe whose other
# end is held outside the tree, a generic netlink socket) is refused: the dump exits
# non-zero with a message naming the pid, the fd and the kind; the program
# keeps running, untraced, and passes its own checks afterwards; no
# checkpoint is left behind.
# When one of these kinds becomes supported, drop it from MODES.
. "$(dirname "$0")/lib.sh"

MODES=${UNSUPPORTED_MODES:-extpipe netlink}
# (threads are supported now: tests/e2e/test_threads.sh; pipes inside the
# tree: tests/e2e/test_pipes.sh; unix sockets: tests/e2e/test_unix.sh; TCP
# and UDP sockets: tests/e2e/test_tcp.sh; netlink sockets of the protocols
# without hidden kernel state: tests/e2e/test_netlink.sh)
declare -A KIND=([extpipe]='pipe:\[[0-9]+\].*outside the tree' [netlink]='netlink socket')
declare -A FD=([extpipe]='fd 5' [netlink]='fd 7')

for mode in $MODES; do
	LOG=$T/$mode.log
	diag_add "$LOG"
	start_workload H "$T/$mode.ready" -- "$WL/holder" "$mode" "$LOG" "$T/$mode.ready"
	wait_lines "$LOG" 2
	if ckptctl_run dump "$H" -D "$T/$mode.img"; then
		fail "$mode: dump of a tree holding a $mode succeeded"
	fi
	msg=$(cat "$ERR")
	log "$mode: refused: $msg"
	[[ $msg == *"$H"* ]] || fail "$mode: error message does not name pid $H"
	grep -qiE -- "${KIND[$mode]}" "$ERR" || fail "$mode: error message does not name the kind (${KIND[$mode]})"
	[[ -z ${FD[$mode]} ]] || grep -qE -- "${FD[$mode]}([^0-9]|$)" "$ERR" ||
		fail "$mode: error message does not name ${FD[$mode]}"
	[[ ! -e $T/$mode.img/inventory.img ]] || fail "$mode: a refused dump left a checkpoint"
	compgen -G "$T/$mode.img.tmp*" >/dev/null && fail "$mode: a refused dump left its temporary directory"
	assert_running "$H"
	lines=$(line_count "$LOG")
	wait_lines "$LOG" $((lines + 3)) 10
	assert_running "$H"
	awk '$1 != "ok" || $2 != NR { print "line " NR ": " $0; bad = 1; exit } END { exit bad }' "$LOG" ||
		fail "$mode: the program's own check failed after the refused dump"
	kill_tree "$H"
	untrack "$H"
done

# A zombie child (supported now): dumped and restored, it is a zombie again
# after the restore, with the same pid, and the restored parent reaps it
# with its original exit status.
ZLOG=$T/zombie.log
diag_add "$ZLOG"
start_workload ZP "$T/zombie.ready" -- "$WL/sleeper" zombie "$ZLOG" "$T/zombie.ready" "$T/zombie.trigger"
Z=$(awk '/^zombie/ {print $2}' "$ZLOG")
wait_for 5 "pid $Z to be a zombie" eval 'proc_stat "$Z" && [[ $S_STATE == Z ]]'
ckpt_dump "$ZP" "$T/zombie.img"
assert_tree_gone "$ZP"
ckpt_restore "$T/zombie.img"
[[ $RESTORED_PID == "$ZP" ]] || fail "zombie: restored root pid $RESTORED_PID, dumped $ZP"
proc_stat "$Z" && [[ $S_PPID == "$ZP" ]] || fail "zombie: pid $Z is not a child of $ZP after restore"
proc_stat "$Z" && [[ $S_STATE == Z ]] || fail "pid $Z is not a zombie any more (state ${S_STATE:-gone})"
assert_running "$ZP"
touch "$T/zombie.trigger"
wait_grep "$ZLOG" '^reaped' 5
grep -qx "reaped $Z status 7 ok" "$ZLOG" || fail "parent did not reap the zombie with status 7: $(tail -n 1 "$ZLOG")"
kill_tree "$ZP"

# A seccomp filter that hands syscalls to a user-space supervisor
# (SECCOMP_RET_USER_NOTIF): refused, the program keeps running untouched
# (other seccomp filters are supported: tests/e2e/test_procstate.sh).
NLOG=$T/notif.log
diag_add "$NLOG"
start_workload NP "$T/notif.ready" -- "$WL/procstate" notif "$NLOG" "$T/notif.ready"
wait_lines "$NLOG" 2
ckptctl_run dump "$NP" -D "$T/notif.img" && fail "dump of a program with a SECCOMP_RET_USER_NOTIF filter succeeded"
log "notif: refused: $(cat "$ERR")"
grep -q "pid $NP" "$ERR" && grep -q SECCOMP_RET_USER_NOTIF "$ERR" || fail "notif: message does not name the pid and the filter: $(cat "$ERR")"
[[ ! -e $T/notif.img/inventory.img ]] || fail "notif: a refused dump left a checkpoint"
assert_running "$NP"
lines=$(line_count "$NLOG")
wait_lines "$NLOG" $((lines + 3)) 10
awk '$1 != "ok" || $2 != NR { print "line " NR ": " $0; bad = 1; exit } END { exit bad }' "$NLOG" ||
	fail "notif: the program's own check failed after the refused dump"
kill_tree "$NP"
untrack "$NP"

# A pid that does not exist.
ckptctl_run dump 999999 -D "$T/nopid.img" && fail "dump of pid 999999 succeeded"
grep -q 999999 "$ERR" || fail "dump of a missing pid: message does not name it: $(cat "$ERR")"
pass
