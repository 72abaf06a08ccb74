#!/bin/bash
# SPDX-License-Identifier: MIT
# Signal state across dump and restore: a handler (SA_SIGINFO, sa_mask)
# runs for a signal sent after restore with its si_value; a blocked signal
# that was pending (sigqueue'd with a value) at dump time, and three queued
# real-time signals, are delivered after restore with their original values
# once the workload unblocks them; ignored and blocked sets are unchanged.
# The same with the dump's remote system calls made one by one
# (CKPT_FAULT=rsys-no-batch), as where a task refuses the pages of a batch.
. "$(dirname "$0")/lib.sh"

sigstate() { grep -E '^(SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt):' "/proc/$1/status"; }

# signals_pass NAME [CKPT_FAULT]: the whole check, the dump under CKPT_FAULT if given
signals_pass()
{
	local name=$1 fault=${2:-}
	LOG=$T/$name.log
	diag_add "$LOG"
	start_workload SIG "$T/$name.ready" -- "$WL/sigtest" "$LOG" "$T/$name.ready" "$T/$name.trigger"

	sigstate "$SIG" >"$T/$name.before"
	grep -q '^ShdPnd:.*[1-9a-f]' "$T/$name.before" || fail "SIGUSR2 is not pending before the dump"

	tree_snapshot "$SIG" >"$T/$name.tree"
	CKPT_FAULT=$fault ckpt_dump "$SIG" "$T/$name.img"
	assert_tree_gone "$SIG"
	ckpt_restore "$T/$name.img"
	[[ $RESTORED_PID == "$SIG" ]] || fail "restored root pid $RESTORED_PID, dumped $SIG"
	assert_same_tree "$T/$name.tree" "$SIG"
	assert_running "$SIG"
	sigstate "$SIG" >"$T/$name.after"
	diff -u "$T/$name.before" "$T/$name.after" || fail "signal state in /proc/$SIG/status changed"

	# Handler for a signal sent after restore, with a value.
	"$WL/sigtest" --send "$SIG" 10 777 || fail "sigqueue SIGUSR1 failed"
	wait_grep "$LOG" '^SIGUSR1 ' 5
	grep -qE '^SIGUSR1 code -1 value 777 pid [0-9]+ mask ok$' "$LOG" ||
		fail "SIGUSR1 handler ran with wrong data or mask: $(grep SIGUSR1 "$LOG")"

	# Ignored signal stays ignored.
	kill -TERM "$SIG"
	sleep 0.2
	assert_running "$SIG"

	# Pending signals delivered once unblocked.
	touch "$T/$name.trigger"
	wait_grep "$LOG" '^unblocked$' 5
	grep -qx 'pending usr2 1 rtmin 1' "$LOG" || fail "pending signals lost: $(grep pending "$LOG")"
	grep -qx "SIGUSR2 code -1 value 4660 pid $SIG" "$LOG" || fail "pending SIGUSR2 not delivered with its value"
	grep '^SIGRTMIN' "$LOG" | diff -u <(printf 'SIGRTMIN value %d code -1\n' 1 2 3) - ||
		fail "queued SIGRTMIN signals not delivered in order with their values"
	assert_running "$SIG"
	kill_tree "$SIG"
	log "$name: signal state, handler, pending and queued signals intact"
}

signals_pass batch
signals_pass one-by-one rsys-no-batch
pass
