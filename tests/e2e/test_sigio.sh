#!/bin/bash
# SPDX-License-Identifier: MIT
# Signal-driven I/O state of an open file description (O_ASYNC, the SIGIO
# owner of F_SETOWN / F_SETOWN_EX, the signal of F_SETSIG) is not restored
# yet: the dump refuses it, naming pid and fd, and the program runs on
# (tests/workloads/fidelity.c sigio). Before, it was silently dropped.
. "$(dirname "$0")/lib.sh"

for what in async own sig; do
	LOG=$T/$what.log
	diag_add "$LOG"
	start_workload S "$T/$what.ready" -- "$WL/fidelity" sigio "$LOG" "$T/$what.ready" "$what"
	wait_grep "$LOG" '^ok 1$'
	ckptctl_run dump "$S" -D "$T/$what.img" && fail "$what: dump of a pipe with signal-driven I/O state succeeded"
	grep -qE "pid $S: fd [0-9]+: (signal-driven I/O \(O_ASYNC\)|its SIGIO owner .*) is not supported yet" "$ERR" ||
		fail "$what: unexpected error: $(cat "$ERR")"
	lines=$(line_count "$LOG")
	wait_for 10 "'ok' after the refused dump" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok '"
	grep '^bad' "$LOG" && fail "$what: the workload saw a change"
	assert_tree_running "$S"
	kill_tree "$S"
	log "$what: refused: $(head -c 200 "$ERR")"
done
pass
