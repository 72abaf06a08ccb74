#!/bin/bash
# SPDX-License-Identifier: MIT
# A python3 interpreter with state in memory (counter, a growing dict, a
# Mersenne Twister) continues after restore exactly where it stopped: the
# next line it prints follows the last one, no gap, no reset.
. "$(dirname "$0")/lib.sh"

LOG=$T/py.log
diag_add "$LOG"
start_workload PY "$T/py.ready" -- "$PYTHON" "$WLSRC/pycounter.py" "$LOG" "$T/py.ready"
wait_lines "$LOG" 20
tree_snapshot "$PY" >"$T/tree.before"

ckpt_dump "$PY" "$T/img"
assert_tree_gone "$PY"
lines=$(line_count "$LOG")
"$PYTHON" "$WLSRC/pycounter.py" --verify "$LOG" || fail "python log bad before restore"
log "dumped after $lines lines: $(tail -n 1 "$LOG")"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$PY" ]] || fail "restored root pid $RESTORED_PID, dumped $PY"
assert_running "$PY"
assert_same_tree "$T/tree.before" "$PY"
wait_lines "$LOG" $((lines + 20)) 20
assert_running "$PY"
kill_tree "$PY"
log "first line after restore: $(sed -n "$((lines + 1))p" "$LOG")"
"$PYTHON" "$WLSRC/pycounter.py" --verify "$LOG" || fail "python output has a gap or reset across the restore"
pass
