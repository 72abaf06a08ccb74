#!/bin/bash
# SPDX-License-Identifier: MIT
# dump --leave-running of a program that writes to all its memory all the
# time (memhog --rewrite: a new generation of the whole area after every
# check), so it writes right after the dump resumes it, while its pages
# still wait in the dump's pipes (docs/dump.md, "Leave running"). The
# restore of that dump must show the memory as it was at the freeze: a page
# saved as it was later mixes two generations, and memhog's next check
# after the restore says CORRUPT. Twice: with the pages in pipes, and
# written while frozen (CKPT_FAULT=page-pipes, the path of tasks whose
# pages can't wait in pipes).
. "$(dirname "$0")/lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"

round()
{
	local name=$1 lines first now
	shift
	start_workload MH "$T/ready-$name" -- "$WL/memhog" 64 "$LOG" "$T/ready-$name" \
		--interval 0 --rewrite
	wait_lines "$LOG" 4
	env "$@" "$CKPTCTL" dump "$MH" -D "$T/img-$name" --leave-running --json >"$T/dump-$name.json" ||
		fail "$name: dump --leave-running failed"
	grep -q '"frozen_seconds":' "$T/dump-$name.json" || fail "$name: no frozen_seconds"
	assert_running "$MH"
	lines=$(line_count "$LOG")
	# it went on writing new generations of its memory, and checking them
	wait_lines "$LOG" $((lines + 5)) 20
	grep -n CORRUPT "$LOG" && fail "$name: memory corrupted after --leave-running"

	kill_tree "$MH"
	untrack "$MH"
	lines=$(line_count "$LOG")
	ckpt_restore "$T/img-$name"
	wait_lines "$LOG" $((lines + 5)) 20
	grep -n CORRUPT "$LOG" && fail "$name: the restore does not show the memory at the freeze"
	first=$(sed -n "$((lines + 1))p" "$LOG" | awk '{print $2}')
	now=$(memhog_last_iter "$LOG")
	log "$name: $(cat "$T/dump-$name.json"); restored: checks $first..$now all ok"
	kill_tree "$MH"
	untrack "$MH"
	rm -f "$LOG"
}

round pipes
round frozen CKPT_FAULT=page-pipes
pass
