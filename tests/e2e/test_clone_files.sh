#!/bin/bash
# SPDX-License-Identifier: MIT
# Two processes sharing one fd table (clone(CLONE_FILES) without
# CLONE_THREAD, tests/workloads/fidelity.c clonefiles) would come back with
# a table each: the dump refuses them, naming both pids, and leaves the tree
# running.
. "$(dirname "$0")/lib.sh"

LOG=$T/cf.log
diag_add "$LOG"
start_workload C "$T/cf.ready" -- "$WL/fidelity" clonefiles "$LOG" "$T/cf.ready"
read -r _ KID _ <<<"$(grep '^child ' "$LOG")"
wait_grep "$LOG" '^ok main 1$'
wait_grep "$LOG" '^ok child 1$'
ckptctl_run dump "$C" -D "$T/img" && fail "dump of processes sharing an fd table succeeded"
grep -q "pid $KID shares its file descriptor table with pid $C (clone with CLONE_FILES" "$ERR" ||
	fail "unexpected error: $(cat "$ERR")"
[[ ! -e $T/img ]] || fail "a refused dump left $T/img"
lines=$(line_count "$LOG")
wait_for 10 "'ok main' after the refused dump" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok main '"
wait_for 10 "'ok child' after the refused dump" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok child '"
grep '^bad' "$LOG" && fail "the workload saw a change"
assert_tree_running "$C"
pass
