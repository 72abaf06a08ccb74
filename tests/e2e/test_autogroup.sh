#!/bin/bash
# SPDX-License-Identifier: MIT
# The nice value of a session's autogroup (tests/workloads/autogroup.py,
# python3): the root's session at 7, a child's own session at 3 with a
# member in it, each reading /proc/self/autogroup every 100 ms. The
# restore makes every session anew, each with an autogroup of nice 0:
# before the fix the restored processes saw nice 0; now each leader sets
# its saved value before its children join. Forged values are refused.
. "$(dirname "$0")/lib.sh"

[[ -e /proc/self/autogroup ]] || fail "no /proc/self/autogroup: this kernel has no CONFIG_SCHED_AUTOGROUP"
LOG=$T/autogroup.log
diag_add "$LOG"
start_workload A "$T/ag.ready" -- "$PYTHON" "$WLSRC/autogroup.py" "$LOG" "$T/ag.ready"
for n in root leader member; do
	wait_grep "$LOG" "^ok $n 1$" 10
done
for want in "root 7" "leader 3" "member 3"; do
	grep -qE "^start ${want% *} [0-9]+ nice ${want#* }$" "$LOG" ||
		fail "the workload did not set what this test is about ($want): $(grep '^start' "$LOG")"
done
grep -q '^bad' "$LOG" && fail "a change before any dump: $(grep '^bad' "$LOG")"
tree_snapshot "$A" >"$T/tree.before"

ckpt_dump "$A" "$T/img"
assert_tree_gone "$A"
[[ $("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$A.img" 0 37) == 14 ]] ||
	fail "core-$A.img: autogroup_nice is not 7 (zigzag 14)"
refused_forged "$T/img" "core-$A.img" 0 37 40 "field autogroup_nice: 20 is out of range -20..19" \
	"$T/tree.before"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$A" ]] || fail "restored pid $RESTORED_PID, dumped $A"
assert_same_tree "$T/tree.before" "$A"
for n in root leader member; do
	wait_for 10 "'ok $n' after the restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok $n '"
done
sleep 0.3
tail -n +$((lines + 1)) "$LOG" | grep '^bad' && fail "an autogroup's nice changed across dump and restore"
log "each session's autogroup kept its nice value (7, 3)"
kill_tree "$A"
pass
