#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-area state a process sets with madvise, mlock and mseal comes back
# (tests/workloads/fidelity.c madv): VmFlags of each area in smaps are the
# same after restore (dc dd wf hg nh mg rr sr lo lf sl), and so is the
# content. Guard pages (MADV_GUARD_INSTALL) are refused at dump.
. "$(dirname "$0")/lib.sh"

LOG=$T/madv.log
diag_add "$LOG"

# "name flags" of every area the workload logged, read from smaps of PID
area_flags()
{
	local name addr
	while read -r _ name addr _; do
		echo "$name $(awk -v a="${addr#0x}-" 'index($0, a) == 1 {f = 1} f && /^VmFlags:/ {sub(/^VmFlags: */, ""); print; exit}' "/proc/$1/smaps")"
	done < <(grep '^area ' "$LOG")
}

start_workload M "$T/madv.ready" -- "$WL/fidelity" madv "$LOG" "$T/madv.ready"
wait_grep "$LOG" '^ok 1$'
area_flags "$M" >"$T/flags.before"
for f in dc dd wf hg nh mg rr sr lo lf sl; do
	grep -q " $f\b" "$T/flags.before" || fail "no area has VmFlags $f: $(cat "$T/flags.before")"
done
ckpt_dump "$M" "$T/img"
assert_tree_gone "$M"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
area_flags "$M" >"$T/flags.after"
diff -u "$T/flags.before" "$T/flags.after" || fail "VmFlags of the areas changed across dump and restore"
wait_for 10 "'ok' after the restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok '"
grep '^bad' "$LOG" && fail "the workload saw its areas change"
assert_tree_running "$M"
kill_tree "$M"

LOG=$T/guard.log
diag_add "$LOG"
start_workload G "$T/guard.ready" -- "$WL/fidelity" madv "$LOG" "$T/guard.ready" guard
wait_grep "$LOG" '^ok 1$'
ckptctl_run dump "$G" -D "$T/gimg" && fail "dump of a program with a guard page succeeded"
grep -q "pid $G: area .*guard pages .*MADV_GUARD_INSTALL" "$ERR" || fail "unexpected error: $(cat "$ERR")"
lines=$(line_count "$LOG")
wait_for 10 "'ok' after the refused dump" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok '"
assert_tree_running "$G"
grep '^bad' "$LOG" && fail "the workload saw its areas change after a refused dump"
pass
