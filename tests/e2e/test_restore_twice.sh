#!/bin/bash
# SPDX-License-Identifier: MIT
# The same images restore twice: restore, verify, kill the copy, restore
# again, verify again. Restoring never changes the images (sha256).
. "$(dirname "$0")/lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 64 "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 3
tree_snapshot "$MH" >"$T/tree.before"
ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
image_sums "$T/img" >"$T/sums.before"
dumped=$(memhog_last_iter "$LOG")

for round in 1 2; do
	lines=$(line_count "$LOG")
	ckpt_restore "$T/img"
	[[ $RESTORED_PID == "$MH" ]] || fail "round $round: restored root pid $RESTORED_PID, dumped $MH"
	assert_same_tree "$T/tree.before" "$MH"
	wait_lines "$LOG" $((lines + 4)) 15
	first=$(sed -n "$((lines + 1))p" "$LOG" | awk '{print $2}')
	[[ $first == $((dumped + 1)) ]] || fail "round $round: first iteration $first, expected $((dumped + 1))"
	# Each restore starts again from the dumped iteration: the log jumps back there.
	if ((round == 1)); then
		last=$(check_memhog_log "$LOG") || fail "round $round: $last"
	else
		last=$(check_memhog_log "$LOG" $((lines + 1))) || fail "round $round: $last"
	fi
	grep -n CORRUPT "$LOG" && fail "round $round: memory corrupted"
	assert_running "$MH"
	log "round $round: memory verified, iterations $first..$last"
	kill_tree "$MH"
	untrack "$MH"
	assert_tree_gone "$MH"
	image_sums "$T/img" | diff -u "$T/sums.before" - || fail "round $round: restore changed the images"
done
pass
