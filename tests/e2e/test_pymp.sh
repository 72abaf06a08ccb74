#!/bin/bash
# SPDX-License-Identifier: MIT
# python3 with threading threads and a multiprocessing Pool of two forked
# workers (pipes between the processes, a semaphore in /dev/shm unlinked
# while mapped by all three): after restore the same three pids carry on,
# the combined output continues with no gap or reset, and the thread
# counters keep moving.
. "$(dirname "$0")/lib.sh"

LOG=$T/mp.log
diag_add "$LOG"
start_workload MP "$T/mp.ready" -- "$PYTHON" "$WLSRC/pymp.py" "$LOG" "$T/mp.ready"
wait_lines "$LOG" 10
tree_snapshot "$MP" >"$T/tree.before"
(($(wc -l <"$T/tree.before") >= 3)) || fail "expected the parent and two pool workers: $(cat "$T/tree.before")"

ckpt_dump "$MP" "$T/img"
assert_tree_gone "$MP"
lines=$(line_count "$LOG")
"$PYTHON" "$WLSRC/pymp.py" --verify "$LOG" || fail "log bad before restore"
before=$(tail -n 1 "$LOG")
log "dumped after $lines lines: $before"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$MP" ]] || fail "restored root pid $RESTORED_PID, dumped $MP"
assert_running "$MP"
assert_same_tree "$T/tree.before" "$MP"
wait_lines "$LOG" $((lines + 20)) 20
assert_running "$MP"
kill_tree "$MP"
log "first line after restore: $(sed -n "$((lines + 1))p" "$LOG")"
"$PYTHON" "$WLSRC/pymp.py" --verify "$LOG" || fail "output has a gap or reset across the restore"
after=$(tail -n 1 "$LOG")
a0=${before#*a=}; a0=${a0%% *}; a1=${after#*a=}; a1=${a1%% *}
((a1 > a0)) || fail "thread a did not keep counting after restore ($a0 -> $a1)"
pass
