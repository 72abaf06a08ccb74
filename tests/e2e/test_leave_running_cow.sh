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
# pages can't wait in pipes), and with pipes again under a limit of 24
# fds in the program (the task makes fewer pipes a round). And a --leave-running dump failing while the
# program holds the pipe ends of a round (CKPT_FAULT=page-pipes-round)
# leaves it as it was: running, the same fds, memory intact.
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
	[[ $name == fdlimit ]] && { prlimit --pid "$MH" --nofile=24 || fail "prlimit failed"; }
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
# room for 10 pipes at a time in the program's fd table: 7 rounds
round fdlimit

start_workload MH "$T/ready-fail" -- "$WL/memhog" 64 "$LOG" "$T/ready-fail" --interval 0 --rewrite
wait_lines "$LOG" 4
fds_before=$(ls -l /proc/"$MH"/fd | awk 'NR > 1 {print $9, $10, $11}')
if CKPT_FAULT=page-pipes-round ckptctl_run dump "$MH" -D "$T/img-fail" --leave-running; then
	fail "dump succeeded despite CKPT_FAULT=page-pipes-round"
fi
grep -q page-pipes-round "$ERR" || fail "error does not name the step: $(cat "$ERR")"
assert_running "$MH"
fds_after=$(ls -l /proc/"$MH"/fd | awk 'NR > 1 {print $9, $10, $11}')
[[ $fds_after == "$fds_before" ]] ||
	fail "a failed --leave-running dump changed the program's fds: before: $fds_before; after: $fds_after"
lines=$(line_count "$LOG")
wait_lines "$LOG" $((lines + 3)) 20
grep -n CORRUPT "$LOG" && fail "memory corrupted after a failed --leave-running dump"
log "a failed round: refused, fds as before ($(echo "$fds_after" | wc -l)), memory intact"
pass
