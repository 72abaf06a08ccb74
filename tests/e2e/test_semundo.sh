#!/bin/bash
# SPDX-License-Identifier: MIT
# System V semaphore adjustments (tests/workloads/semundo.c: a semaphore
# taken as a lock, with SEM_UNDO or without). The kernel undoes a process's
# SEM_UNDO operations when it exits: before the fix a killing dump gave
# the lock back (the value went from 0 to 1 while the checkpoint said the
# program held it), and the restored program, holding nothing the kernel
# knows of, read "bad: value 1" while any other process could take the
# lock. Now the dump refuses a process with adjustments (the kernel reader
# sees its undo list), naming it, and leaves it running with its lock; a
# lock taken without SEM_UNDO (the set outlives the tree) is dumped and
# restored, still held. Without a reader the dump cannot tell: it says so.
. "$(dirname "$0")/lib.sh"

# semval ID: the semaphore's value, as any process of the machine sees it
semval()
{
	"$PYTHON" -c 'import ctypes, sys; print(ctypes.CDLL(None).semctl(int(sys.argv[1]), 0, 12))' "$1"
}

for mode in undo plain; do
	LOG=$T/$mode.log
	diag_add "$LOG"
	start_workload P "$T/$mode.ready" -- "$WL/semundo" "$LOG" "$T/$mode.ready" "$T/$mode.id" "$mode"
	wait_grep "$LOG" '^ok 1$' 10
	read -r ID <"$T/$mode.id"
	at_exit "$PYTHON" -c "'import ctypes; ctypes.CDLL(None).semctl($ID, 0, 0)'"
	[[ $(semval "$ID") == 0 ]] || fail "$mode: the program does not hold its semaphore"
	tree_snapshot "$P" >"$T/tree.before"
	if [[ $mode == undo ]]; then
		lines=$(line_count "$LOG")
		ckptctl_run dump "$P" -D "$T/img" && fail "a process with SEM_UNDO adjustments was dumped"
		grep -qF "pid $P has System V semaphore adjustments to undo at its exit (semop with SEM_UNDO)" "$ERR" ||
			fail "not refused for its SEM_UNDO adjustments: $(cat "$ERR")"
		[[ ! -e $T/img ]] || fail "the refused dump left $T/img"
		wait_grep_after "$LOG" "$lines" '^ok '
		[[ $(semval "$ID") == 0 ]] || fail "the refused dump gave the lock back"
		# without the kernel reader nothing tells: dumped, with a warning
		CKPT_FAULT=kread-none ckptctl_run dump "$P" -D "$T/unseen" --leave-running ||
			fail "kread-none: the dump failed: $(cat "$ERR")"
		grep -qF "System V semaphore adjustments (SEM_UNDO) would be lost" "$ERR" ||
			fail "kread-none: the dump did not say what it cannot tell: $(cat "$ERR")"
		grep '^bad' "$LOG" && fail "the program lost its lock"
		kill_tree "$P"
		continue
	fi
	ckpt_dump "$P" "$T/img"
	assert_tree_gone "$P"
	[[ $(semval "$ID") == 0 ]] || fail "plain: the semaphore changed when the program was killed"
	lines=$(line_count "$LOG")
	ckpt_restore "$T/img"
	[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
	assert_same_tree "$T/tree.before" "$P"
	wait_grep_after "$LOG" "$lines" '^ok '
	sleep 0.3
	grep '^bad' "$LOG" && fail "plain: the restored program's semaphore changed"
	log "plain: restored holding its semaphore"
	kill_tree "$P"
done
pass
