#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-process attributes in /proc (tests/workloads/fidelity.c attr):
# oom_score_adj of each process, and the audit login uid and session id.
# The tree runs with its login uid unset; it is restored by a ckptctl whose
# own login uid is set (so the tasks would inherit it): they get theirs
# cleared again. A tree whose login uid is set (with a session id the
# kernel will never hand out again) is refused by a restore from another
# login session.
. "$(dirname "$0")/lib.sh"

LOG=$T/attr.log
diag_add "$LOG"
[[ $(</proc/self/loginuid) == 4294967295 ]] || log "note: the test runs with login uid $(</proc/self/loginuid)"

attr_snapshot()
{
	local p
	for p in $(tree_pids "$1"); do
		echo "$p oom_score_adj $(<"/proc/$p/oom_score_adj") loginuid $(<"/proc/$p/loginuid") sessionid $(<"/proc/$p/sessionid")"
	done
}

start_workload A "$T/attr.ready" -- "$WL/fidelity" attr "$LOG" "$T/attr.ready"
wait_grep "$LOG" '^ok child 1$'
wait_grep "$LOG" '^ok main 1$'
attr_snapshot "$A" >"$T/attr.before"
grep -q "^$A oom_score_adj 345 " "$T/attr.before" && grep -q " oom_score_adj 678 " "$T/attr.before" ||
	fail "the workload did not set its oom_score_adj: $(cat "$T/attr.before")"
tree_snapshot "$A" >"$T/tree.before"
ckpt_dump "$A" "$T/img"
assert_tree_gone "$A"
lines=$(line_count "$LOG")
# restored by a ckptctl with a login uid of its own (a new audit session)
(printf 1000 >/proc/self/loginuid && exec timeout -k 5 60 "$CKPTCTL" restore "$T/img" --json) >"$T/restore.out" 2>"$T/restore.err" ||
	fail "restore failed: $(cat "$T/restore.err")"
TRACKED+=("$A")
assert_same_tree "$T/tree.before" "$A"
attr_snapshot "$A" >"$T/attr.after"
diff -u "$T/attr.before" "$T/attr.after" || fail "oom_score_adj or audit ids changed across dump and restore"
for n in main child; do
	wait_for 10 "'ok $n' after the restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok $n '"
done
grep '^bad' "$LOG" && fail "the workload saw its attributes change"
assert_tree_running "$A"
kill_tree "$A"

# a login uid set in the tree: its session id cannot be made again
LOG2=$T/attr2.log
diag_add "$LOG2"
start_workload B "$T/attr2.ready" -- "$WL/fidelity" attr "$LOG2" "$T/attr2.ready" setlogin
wait_grep "$LOG2" '^ok child 1$'
tree_snapshot "$B" >"$T/tree2.before"
ckpt_dump "$B" "$T/img2"
assert_tree_gone "$B"
ckptctl_run restore "$T/img2" && fail "restore of a tree with a login uid of another session succeeded"
grep -q "audit login uid 1234 and session id [0-9]* cannot be given back" "$ERR" || fail "unexpected error: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree2.before"
pass
