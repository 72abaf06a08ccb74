#!/bin/bash
# SPDX-License-Identifier: MIT
# dump --leave-running: the program keeps running correctly (same pid,
# not stopped or traced, memory intact, counter continuous); after killing
# it, the images restore it to the iteration it had at dump time.
. "$(dirname "$0")/lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 64 "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 3
tree_snapshot "$MH" >"$T/tree.before"
before=$(memhog_last_iter "$LOG")
ckpt_dump "$MH" "$T/img" --leave-running
after=$(memhog_last_iter "$LOG")
assert_running "$MH"
lines=$(line_count "$LOG")
wait_lines "$LOG" $((lines + 5)) 10
assert_running "$MH"
assert_same_tree "$T/tree.before" "$MH"
last=$(check_memhog_log "$LOG") || fail "log after --leave-running: $last"
grep -n CORRUPT "$LOG" && fail "memory corrupted after --leave-running"
log "kept running: iterations continue to $last"

kill_tree "$MH"
untrack "$MH"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$MH" ]] || fail "restored root pid $RESTORED_PID, dumped $MH"
assert_same_tree "$T/tree.before" "$MH"
wait_lines "$LOG" $((lines + 4)) 15
first=$(sed -n "$((lines + 1))p" "$LOG" | awk '{print $2}')
# The dump froze the program between iterations $before and $after.
((first >= before + 1 && first <= after + 1)) ||
	fail "first iteration after restore $first, expected within $((before + 1))..$((after + 1))"
now=$(check_memhog_log "$LOG" $((lines + 1))) || fail "log after restore: $now"
grep -n CORRUPT "$LOG" && fail "memory corrupted after restore"
assert_running "$MH"
log "restored from the --leave-running images: iterations $first..$now"
pass
