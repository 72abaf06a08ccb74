#!/bin/bash
# SPDX-License-Identifier: MIT
# The LDT (tests/workloads/ldt.c: four entries set with modify_ldt, as
# emulators such as Wine set segments up, read back every 100 ms). Before
# the fix the dump did not save it and the restored program's table was
# empty ("bad: modify_ldt(0) 0 ..."). Now the dump reads it in the task and
# the restore sets each entry again in stage procstate, before the threads'
# segment registers are loaded; a forged descriptor or index is refused by
# the verifier.
. "$(dirname "$0")/lib.sh"

LOG=$T/ldt.log
diag_add "$LOG"
start_workload S "$T/ldt.ready" -- "$WL/ldt" "$LOG" "$T/ldt.ready"
wait_grep "$LOG" '^ok 1$' 10
tree_snapshot "$S" >"$T/tree.before"

# carries_on LINES WHAT: "ok" after line LINES, no "bad"
carries_on()
{
	wait_grep_after "$LOG" "$1" '^ok '
	grep '^bad' "$LOG" | head -3 && fail "$2: the program's LDT changed"
	return 0
}

lines=$(line_count "$LOG")
ckpt_dump "$S" "$T/lr.img" --leave-running
carries_on "$lines" "a --leave-running dump"
n=$("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/lr.img" "core-$S.img" 0 39.1) ||
	fail "core-$S.img has no LDT entry"
[[ $n == 0 ]] || fail "core-$S.img: the first LDT entry has index $n, not 0"

ckpt_dump "$S" "$T/img"
assert_tree_gone "$S"
# a descriptor modify_ldt never makes (the S bit clear), an index past the table
refused_forged "$T/img" "core-$S.img" 0 39.2 4096 "field ldt[0].desc: 0x1000 is not a descriptor modify_ldt makes" "$T/tree.before"
refused_forged "$T/img" "core-$S.img" 0 39.1 8192 "field ldt[0].index: 8192 is not below 8192" "$T/tree.before"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$S" ]] || fail "restored pid $RESTORED_PID, dumped $S"
assert_same_tree "$T/tree.before" "$S"
carries_on "$lines" "the restore"
sleep 0.3
grep -q '^bad' "$LOG" && fail "the LDT changed across dump and restore"
log "the LDT came back entry for entry"
kill_tree "$S"
pass
