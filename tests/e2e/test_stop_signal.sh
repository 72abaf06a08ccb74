#!/bin/bash
# SPDX-License-Identifier: MIT
# The stop signal of a stopped task comes back (tests/workloads/fidelity.c
# stop): a child in a process group of its own, stopped by SIGTSTP, is
# stopped by SIGTSTP again after restore, which its parent's
# waitpid(WUNTRACED) reports. Dumped alone, the same child would be the root
# of the restored tree, in an orphaned group where the kernel discards
# SIGTSTP: that dump is refused and the child stays stopped.
. "$(dirname "$0")/lib.sh"

LOG=$T/stop.log
diag_add "$LOG"
start_workload P "$T/stop.ready" -- "$WL/fidelity" stop "$LOG" "$T/stop.ready"
read -r _ KID _ <<<"$(grep '^child ' "$LOG")"
grep -q "^child $KID stopped 20\$" "$LOG" || fail "the child was not stopped by SIGTSTP: $(grep '^child' "$LOG")"
proc_stat "$KID" && [[ $S_STATE == T ]] || fail "pid $KID is not stopped (state ${S_STATE:-gone})"
wait_grep "$LOG" '^ok 1$'

# the child alone: its restored group would be orphaned
ckptctl_run dump "$KID" -D "$T/kid.img" && fail "dump of a task stopped by SIGTSTP as the root succeeded"
grep -q "pid $KID is stopped by SIGTSTP.*orphaned" "$ERR" || fail "unexpected refusal: $(cat "$ERR")"
[[ ! -e $T/kid.img ]] || fail "a refused dump left $T/kid.img"
proc_stat "$KID" && [[ $S_STATE == T ]] || fail "pid $KID is not stopped after the refused dump (state ${S_STATE:-gone})"

tree_snapshot "$P" >"$T/tree.before"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$P"
wait_for 10 "the parent to see the restored stop" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^stopped '"
got=$(tail -n +$((lines + 1)) "$LOG" | awk '$1 == "stopped" {print $2; exit}')
[[ $got == 20 ]] || fail "after restore waitpid(WUNTRACED) reports the child stopped by signal $got, not 20 (SIGTSTP)"
proc_stat "$KID" && [[ $S_STATE == T ]] || fail "pid $KID is not stopped after restore (state ${S_STATE:-gone})"
tail -n +$((lines + 1)) "$LOG" | grep -q '^tick' && fail "the stopped child ran after restore"

kill -CONT "$KID"
wait_for 10 "'continued'" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^continued$'"
wait_for 10 "the child to run" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^tick'"
assert_tree_running "$P"
pass
