#!/bin/bash
# SPDX-License-Identifier: MIT
# A task stopped by SIGSTOP before the dump is still stopped after restore
# (it does not run a single iteration) and carries on correctly after SIGCONT.
. "$(dirname "$0")/lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 16 "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 3
kill -STOP "$MH"
wait_for 5 "pid $MH to stop" eval 'proc_stat "$MH" && [[ $S_STATE == T ]]'
tree_snapshot "$MH" >"$T/tree.before"
ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$MH"
sleep 0.5
proc_stat "$MH" && [[ $S_STATE == T ]] || fail "pid $MH is not stopped after restore (state ${S_STATE:-gone})"
(($(line_count "$LOG") == lines)) || fail "the stopped program ran after restore"
kill -CONT "$MH"
wait_lines "$LOG" $((lines + 3))
assert_running "$MH"
last=$(check_memhog_log "$LOG") || fail "after SIGCONT: $last"
log "stopped task stayed stopped; after SIGCONT it verified its memory up to iteration $last"
pass
