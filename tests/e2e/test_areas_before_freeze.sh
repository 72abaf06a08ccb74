#!/bin/bash
# SPDX-License-Identifier: MIT
# The areas of a large task are read before the freeze (dump/dump_prefetch.c):
# smaps, whose walk of every page table entry is what a freeze of a large
# task spent most of its collect on, then in the freeze only maps, if the
# kernel's count of the task's address space changes (kread_mm_seq) is
# the same. A python3 program with 96 MiB in one area of its own
# (tests/workloads/areaflags.py):
# - a --leave-running dump takes its areas from before the freeze (its log
#   says so), and the program carries on unchanged;
# - another paused before the freeze (step dump-reserve), during which
#   the program gives the area MADV_DONTDUMP (VmFlags "dd", which no line
#   of maps shows), reads smaps again in the freeze: once the program is
#   killed, the restored program, same pid, has "dd" on its area and the
#   bytes it wrote. Taking the flags from before the freeze loses "dd".
# (A killing dump without --parent reads them in its freeze: dump.c
# short_freeze.)
. "$(dirname "$0")/lib.sh"

LOG=$T/area.log
diag_add "$LOG"
start_workload P "$T/area.ready" -- "$PYTHON" "$WLSRC/areaflags.py" "$LOG" "$T/area.ready" 96
wait_grep "$LOG" '^ok 1 '
grep -Eq '^ok 1 .*\bdd\b' "$LOG" && fail "the area has dd before the test gave it: $(grep '^ok 1 ' "$LOG")"
tree_snapshot "$P" >"$T/tree.before"

lines=$(line_count "$LOG")
ckpt_dump "$P" "$T/lr" --leave-running -vv
grep -Eq "pid $P: its [0-9]+ areas unchanged since they were read before the freeze" "$ERR" ||
	fail "the --leave-running dump did not take the areas read before the freeze: $(grep -E 'areas|smaps' "$ERR")"
wait_grep_after "$LOG" "$lines" '^ok [0-9]+ ' 10
grep -q '^bad' "$LOG" && fail "the program's bytes changed after --leave-running: $(grep '^bad' "$LOG" | head -1)"

paused_dump "$P" dump-reserve -D "$T/img" --leave-running -vv
grep -q "areas of 1 large tasks read before the freeze" "$ERR" ||
	fail "the areas were not read before the freeze: $(cat "$ERR")"
lines=$(line_count "$LOG")
kill -USR1 "$P"
wait_grep_after "$LOG" "$lines" '^ok [0-9]+ .*\bdd\b' 10
release_dump
((RC == 0)) || fail "dump: exit $RC: $(tail -n 5 "$ERR")"
grep -q "pid $P: its areas may have changed since they were read before the freeze" "$ERR" ||
	fail "the dump did not see the change made before its freeze: $(grep -E 'areas|smaps' "$ERR")"
kill -KILL "$P"
assert_gone "$P"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
((RESTORED_PID == P)) || fail "restored as pid $RESTORED_PID, not $P"
assert_same_tree "$T/tree.before" "$P"
wait_grep_after "$LOG" "$lines" '^(ok|bad) [0-9]+ ' 10
first=$(tail -n +$((lines + 1)) "$LOG" | head -n 1)
[[ $first == ok\ * ]] || fail "the restored program's bytes are not the ones it wrote: $first"
[[ $first =~ \ dd(\ |$) ]] || fail "the restored area lost MADV_DONTDUMP (VmFlags: ${first#ok * })"
kill_tree "$P"
pass
