#!/bin/bash
# SPDX-License-Identifier: MIT
# Tasks dumped while blocked in a syscall resume correctly:
#   nanosleep: the loop carries on (an EINTR wake is allowed), ticks by one;
#   wait4: parent and child restored, the parent collects the same child's
#          exit status, then forks and waits again;
#   pause: no spurious return; a SIGUSR1 sent after restore runs the handler
#          and pause returns EINTR.
#   calls that fail with EINTR on any signal, even one without a handler
#   (epoll_wait, epoll_pwait with its own mask, io_uring_enter, semop,
#   sigtimedwait, recv with SO_RCVTIMEO): neither a --leave-running dump nor
#   a dump and restore makes them return; a SIGUSR1 after that still ends
#   them with EINTR once its handler has run, and the mask afterwards is the
#   program's own (not epoll_pwait's).
. "$(dirname "$0")/lib.sh"

# dump_restore NAME PID: dump, check gone, restore (same pid, same tree).
dump_restore()
{
	local name=$1 pid=$2
	tree_snapshot "$pid" >"$T/$name.tree"
	ckpt_dump "$pid" "$T/$name.img"
	assert_tree_gone "$pid"
	ckpt_restore "$T/$name.img"
	[[ $RESTORED_PID == "$pid" ]] || fail "$name: restored root pid $RESTORED_PID, dumped $pid"
	assert_same_tree "$T/$name.tree" "$pid"
	assert_tree_running "$pid"
}

# --- nanosleep --------------------------------------------------------------
NS_LOG=$T/nanosleep.log
diag_add "$NS_LOG"
start_workload NS "$T/ns.ready" -- "$WL/sleeper" nanosleep "$NS_LOG" "$T/ns.ready" 1
wait_grep "$NS_LOG" '^tick 2$'
sleep 0.4 # somewhere in the middle of a 1 s nanosleep
proc_stat "$NS" && [[ $S_STATE == S ]] || fail "nanosleep: pid $NS not sleeping (state $S_STATE)"
dump_restore nanosleep "$NS"
ticks=$(grep -c '^tick' "$NS_LOG")
wait_grep "$NS_LOG" "^tick $((ticks + 3))\$" 10
awk '/^tick/ { if ($2 != ++n) { print "tick " $2 " where " n " was expected"; exit 1 } }
     !/^tick|^wake EINTR/ { print "unexpected line: " $0; exit 1 }' "$NS_LOG" ||
	fail "nanosleep: ticks not continuous across restore"
log "nanosleep: ticks continue ($(grep -c EINTR "$NS_LOG") EINTR wake(s))"
kill_tree "$NS"

# --- wait4 ------------------------------------------------------------------
W4_LOG=$T/wait4.log
diag_add "$W4_LOG"
start_workload W4 "$T/w4.ready" -- "$WL/sleeper" wait4 "$W4_LOG" "$T/w4.ready" 3
child=$(awk '/^round 0 child/ {print $4}' "$W4_LOG")
[[ -n $child ]] || fail "wait4: no child in the log"
proc_stat "$child" && [[ $S_PPID == "$W4" ]] || fail "wait4: child $child is not a child of $W4"
sleep 0.3
dump_restore wait4 "$W4"
wait_grep "$W4_LOG" "^round 0 child $child status" 10
grep -q "^round 0 child $child status 40 ok$" "$W4_LOG" || fail "wait4: wrong status for round 0"
wait_grep "$W4_LOG" '^round 1 child [0-9]+ status 41 ok$' 10
grep -n BAD "$W4_LOG" && fail "wait4: BAD line in the log"
log "wait4: parent collected child $child (status 40) after restore, then round 1"
kill_tree "$W4"

# --- pause ------------------------------------------------------------------
P_LOG=$T/pause.log
diag_add "$P_LOG"
start_workload PA "$T/pause.ready" -- "$WL/sleeper" pause "$P_LOG" "$T/pause.ready"
sleep 0.2
dump_restore pause "$PA"
sleep 0.5
[[ ! -s $P_LOG ]] || fail "pause: spurious output after restore: $(cat "$P_LOG")"
kill -USR1 "$PA"
wait_grep "$P_LOG" '^pause returned' 5
printf 'got SIGUSR1 1\npause returned -1 count 1 errno EINTR\n' | diff -u - "$P_LOG" ||
	fail "pause: unexpected log after SIGUSR1"
assert_running "$PA"
log "pause: SIGUSR1 after restore ran the handler, pause returned EINTR"
kill_tree "$PA"

# --- calls that any signal interrupts -----------------------------------------
# the log but its "semid" line
calls_log() { grep -v '^semid' "$1" || true; }
for mode in epoll epoll_pwait iouring semop sigtimedwait recvtimeo; do
	B_LOG=$T/$mode.log
	diag_add "$B_LOG"
	start_workload BL "$T/$mode.ready" -- "$WL/sleeper" "$mode" "$B_LOG" "$T/$mode.ready"
	semid=$(awk '/^semid/ {print $2}' "$B_LOG")
	[[ $mode != semop || -n $semid ]] || fail "semop: no semid in the log"
	[[ -z $semid ]] || at_exit ipcrm -s "$semid"
	calls_log "$B_LOG" >"$T/$mode.before"
	sleep 0.2
	proc_stat "$BL" && [[ $S_STATE == S ]] || fail "$mode: pid $BL not sleeping (state $S_STATE)"
	ckpt_dump "$BL" "$T/$mode.lr.img" --leave-running
	sleep 0.3
	calls_log "$B_LOG" | diff -u "$T/$mode.before" - ||
		fail "$mode: the call returned after a --leave-running dump"
	dump_restore "$mode" "$BL"
	sleep 0.3
	calls_log "$B_LOG" | diff -u "$T/$mode.before" - ||
		fail "$mode: the call returned after dump and restore"
	kill -USR1 "$BL"
	wait_grep "$B_LOG" "^$mode returned" 5
	printf 'got SIGUSR1 1\n%s returned -1 errno EINTR mask 0x800\n' "$mode" |
		diff -u - <(calls_log "$B_LOG") ||
		fail "$mode: unexpected log after SIGUSR1 (the handler, then EINTR, then the program's mask)"
	if [[ $mode == sigtimedwait ]]; then
		kill -USR2 "$BL"
		wait_grep "$B_LOG" '^sigtimedwait returned 12 errno 0 mask 0x800$' 5
	fi
	assert_running "$BL"
	kill_tree "$BL"
	log "$mode: not ended by the freeze (leave-running, restore); SIGUSR1 still ends it with EINTR"
done
pass
