#!/bin/bash
# SPDX-License-Identifier: MIT
# Areas touched in many separate runs of pages, as an allocator leaves a
# heap, survive dump and restore exactly (each area two of the kernel's, so
# that the dump walks them all in one PAGEMAP_SCAN, dump_mm.c scan_group): every stamped page intact, every
# page between runs still absent (not made by the restore), same pid, dumped
# once with PAGEMAP_SCAN and once from pagemap words. The run counts
# straddle the chunks in which the kernel walks (512 regions) and the
# dump's result vector (1024): between 513 and 1023 regions left in a call,
# Linux 6.18 reports a walk_end below regions it returned, and a dump that
# continued from there saved pages twice (the restore refused the images).
# Then --leave-running, whose pages go into pipes in rounds of batched
# remote syscalls (dump/page_pipes.c): 21,025 runs are more ranges than one
# round takes (16,384) and more pages than its 256 pipes hold, and runs
# straddle the pipes' ends; the program runs on, and the restore of that
# dump has every page.
. "$(dirname "$0")/lib.sh"

LOG=$T/sparse.log
diag_add "$LOG"
RUNS=(600 700 1000 1023 1025 1600 2100 5000)

start_workload SP "$T/sparse.ready" -- "$WL/sparse" "$LOG" "$T/sparse.ready" "${RUNS[@]}"
wait_lines "$LOG" 3 20
grep -n CORRUPT "$LOG" && fail "workload reports corruption before any dump"
pages=$(awk 'NR == 1 { print $3 }' "$LOG")
log "${#RUNS[@]} areas, $pages pages touched"

round()
{
	local name=$1 lines last low high first
	shift
	low=$(tail -n 1 "$LOG" | awk '{print $2}')
	ckpt_dump "$SP" "$T/$name" "$@"
	high=$(tail -n 1 "$LOG" | awk '{print $2}')
	if [[ $name == scan ]]; then
		grep -q "walked in one PAGEMAP_SCAN" "$ERR" ||
			fail "scan: the areas side by side were not walked in one PAGEMAP_SCAN"
	fi
	if [[ " $* " == *" --leave-running "* ]]; then
		# frozen at an iteration between the last logged before the dump
		# and the last logged when it returned; then it runs on
		assert_running "$SP"
		lines=$(line_count "$LOG")
		wait_lines "$LOG" $((lines + 2)) 30
		grep -n CORRUPT "$LOG" && fail "$name: memory differs after --leave-running"
		kill_tree "$SP"
		untrack "$SP"
	fi
	assert_tree_gone "$SP"
	# every page exactly once: the pages image holds the touched pages (plus
	# the process's other memory), not thousands more
	lines=$(line_count "$LOG")
	last=$(tail -n 1 "$LOG" | awk '{print $2}')
	ckpt_restore "$T/$name"
	[[ $RESTORED_PID == "$SP" ]] || fail "restored root pid $RESTORED_PID, dumped $SP"
	wait_lines "$LOG" $((lines + 3)) 30
	grep -n CORRUPT "$LOG" && fail "$name: memory differs after restore"
	tail -n 1 "$LOG" | grep -q "^ok .* $pages\$" || fail "$name: last line after restore: $(tail -n 1 "$LOG")"
	first=$(sed -n "$((lines + 1))p" "$LOG" | awk '{print $2}')
	if [[ " $* " == *" --leave-running "* ]]; then
		((first > low && first <= high + 1)) ||
			fail "$name: first iteration after restore is $first, frozen between $low and $high"
	else
		[[ $first == $((last + 1)) ]] || fail "$name: first iteration after restore is $first, expected $((last + 1))"
	fi
	log "$name: restored and verified (iterations $first..$(tail -n 1 "$LOG" | awk '{print $2}'))"
}

round scan -vv
CKPT_FAULT=pagemap-scan round words
# both ways of finding pages save the same pages
s1=$(stat -c %s "$T"/scan/pages-"$SP".img) s2=$(stat -c %s "$T"/words/pages-"$SP".img)
log "pages image: $s1 bytes (scan), $s2 bytes (pagemap words)"
[[ $s1 == "$s2" ]] || fail "PAGEMAP_SCAN saved $s1 bytes of pages, reading pagemap words $s2"

kill_tree "$SP"
untrack "$SP"
rm -f "$LOG"
start_workload SP "$T/sparse-lr.ready" -- "$WL/sparse" "$LOG" "$T/sparse-lr.ready" 1025 20000
wait_lines "$LOG" 3 30
pages=$(awk 'NR == 1 { print $3 }' "$LOG")
log "--leave-running: 2 areas, $pages pages touched"
round pipes --leave-running
pass
