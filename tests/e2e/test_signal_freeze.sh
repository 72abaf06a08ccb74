#!/bin/bash
# SPDX-License-Identifier: MIT
# Signals sent while the tree is frozen by a dump are delivered as the kernel
# would have delivered them without the dump: the handler runs, and read()
# and pause() interrupted by a handler without SA_RESTART return EINTR
# (they do not silently restart). Each case pauses the dump at a known step
# (CKPT_PAUSE) and sends SIGUSR1 (for the thread in read) and SIGUSR2 (for
# the thread in pause) while the tree is frozen:
#   leave-running    the dump succeeds, the running tree gets both signals;
#   failed dump      the same after the dump fails and resumes the tree;
#   killing dump     a 512 MiB tree killed by the dump, signals sent once its
#                    memory is copied: the signals are in
#                    the checkpoint and the restored tree gets them;
#   after commit     a signal that arrives after the images were written
#                    withdraws that checkpoint and resumes the tree, which
#                    gets it; the dump then starts again and succeeds.
. "$(dirname "$0")/lib.sh"

LOG=$T/sig.log
diag_add "$LOG"

# in_call PID NR: every thread... the thread of PID waiting in syscall NR
in_call()
{
	local f
	for f in /proc/"$1"/task/*/syscall; do
		read -r nr _ <"$f" 2>/dev/null && [[ $nr == "$2" ]] && return 0
	done
	return 1
}

start()
{
	rm -f "$T/sig.ready"
	: >"$LOG"
	start_workload SF "$T/sig.ready" -- "$WL/sigfreeze" "$LOG" "$T/sig.ready" "$1"
	wait_for 10 "a thread in read()" in_call "$SF" 0
	wait_for 10 "a thread in pause()" in_call "$SF" 34
}

freeze_signals()
{
	grep -q '^State:.*(tracing stop)' "/proc/$SF/status" || fail "pid $SF is not frozen by the dump"
	kill -USR1 "$SF"
	kill -USR2 "$SF"
}

expect_eintr()
{
	local what=$1
	wait_grep "$LOG" '^read ' 10
	wait_grep "$LOG" '^pause ' 10
	grep -q '^handler usr1 1$' "$LOG" || fail "$what: the SIGUSR1 handler did not run"
	grep -q '^handler usr2 1$' "$LOG" || fail "$what: the SIGUSR2 handler did not run"
	grep -q '^read EINTR 1$' "$LOG" || fail "$what: read() did not return EINTR: $(grep '^read' "$LOG")"
	grep -q '^pause EINTR 1$' "$LOG" || fail "$what: pause() did not return EINTR: $(grep '^pause' "$LOG")"
	log "$what: both handlers ran, read() and pause() returned EINTR"
}

# --leave-running: frozen after everything was collected
start 8
paused_dump "$SF" dump-finish -D "$T/lr" --leave-running
freeze_signals
release_dump
((RC == 0)) || fail "leave-running dump failed: $(cat "$ERR")"
expect_eintr "leave-running"
kill_tree "$SF"

# a failed dump
start 8
CKPT_FAULT=dump-write paused_dump "$SF" dump-memory -D "$T/failed"
freeze_signals
release_dump
((RC != 0)) || fail "the dump with CKPT_FAULT=dump-write succeeded"
expect_eintr "failed dump"
kill_tree "$SF"

# a killing dump of 512 MiB, signals sent once its memory is copied
start 512
paused_dump "$SF" dump-memory -D "$T/img"
freeze_signals
release_dump
((RC == 0)) || fail "killing dump failed: $(cat "$ERR")"
assert_tree_gone "$SF"
grep -q '^handler' "$LOG" && fail "a handler ran before the tree was killed"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$SF" ]] || fail "restored root pid $RESTORED_PID, dumped $SF"
expect_eintr "restored after a killing dump"
kill_tree "$SF"

# a signal after the images were written: that checkpoint is withdrawn and
# the tree resumed (it gets the signal), and the dump starts again by itself:
# it succeeds, and nothing is lost either way.
start 8
paused_dump "$SF" dump-finish -D "$T/late"
kill -USR1 "$SF"
kill -USR2 "$SF"
release_dump
((RC == 0)) || fail "the dump failed after a signal arrived during its commit (it should dump again): $(cat "$ERR")"
assert_tree_gone "$SF"
ckpt_restore "$T/late"
[[ $RESTORED_PID == "$SF" ]] || fail "restored root pid $RESTORED_PID, dumped $SF"
# handled between the attempts, or pending in the second checkpoint
expect_eintr "signal during the commit"
pass
