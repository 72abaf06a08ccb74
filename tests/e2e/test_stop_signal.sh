#!/bin/bash
# SPDX-License-Identifier: MIT
# Stopped children come back stopped as their parent saw them
# (tests/workloads/fidelity.c stop): two children, each in a process group
# of its own, stopped by SIGTSTP. The parent collected the first stop with
# waitpid(WUNTRACED) and only looked at the second (waitid WNOWAIT), and
# got both SIGCHLDs. After restore (restorer/signals.c
# resume_stopped_children; the dump reads "collected" with the kernel
# reader):
#  - the first stop is not reported again, and no SIGCHLD comes;
#  - the second is still to be collected: waitpid(WUNTRACED) reports it,
#    stopped by SIGTSTP (the stop signal comes back);
#  - both stay stopped until SIGCONT, then run, and "continued" is reported.
# Dumped alone, a child would be the root of the restored tree, in an
# orphaned group where the kernel discards SIGTSTP: that dump is refused
# and the child stays stopped.
# A parent whose SIGCHLD has SA_NOCLDSTOP got no SIGCHLD from the stops,
# and gets none after restore (the restorer does not wait for one).
. "$(dirname "$0")/lib.sh"

LOG=$T/stop.log
diag_add "$LOG"
start_workload P "$T/stop.ready" -- "$WL/fidelity" stop "$LOG" "$T/stop.ready"
read -r _ KID _ <<<"$(grep '^child ' "$LOG")"
read -r _ KID2 _ <<<"$(grep '^child2 ' "$LOG")"
grep -q "^child $KID stopped 20\$" "$LOG" || fail "the child was not stopped by SIGTSTP: $(grep '^child' "$LOG")"
grep -q "^child2 $KID2 stopped 20 pending\$" "$LOG" || fail "the second child: $(grep '^child2' "$LOG")"
for k in "$KID" "$KID2"; do
	proc_stat "$k" && [[ $S_STATE == T ]] || fail "pid $k is not stopped (state ${S_STATE:-gone})"
done
wait_grep "$LOG" '^ok 1 sigchld 2$'

# the child alone: its restored group would be orphaned
ckptctl_run dump "$KID" -D "$T/kid.img" && fail "dump of a task stopped by SIGTSTP as the root succeeded"
grep -q "pid $KID is stopped by SIGTSTP.*orphaned" "$ERR" || fail "unexpected refusal: $(cat "$ERR")"
[[ ! -e $T/kid.img ]] || fail "a refused dump left $T/kid.img"
proc_stat "$KID" && [[ $S_STATE == T ]] || fail "pid $KID is not stopped after the refused dump (state ${S_STATE:-gone})"

tree_snapshot "$P" >"$T/tree.before"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
"$CKPTCTL" show "$T/img" "core-$KID.img" | grep -q '"stop_collected": *true' ||
	fail "core-$KID.img does not say the stop was collected"
"$CKPTCTL" show "$T/img" "core-$KID2.img" | grep -q '"stop_collected": *true' &&
	fail "core-$KID2.img says the pending stop was collected"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$P"
after() { tail -n +$((lines + 1)) "$LOG"; }
# three "ok" lines of the parent: 1.5 s in which a second report or SIGCHLD would show
wait_for 10 "3 ok lines after restore" eval '(( $(after | grep -c "^ok ") >= 3 ))'
after | grep -q '^stopped ' && fail "after restore the collected stop is reported again: $(after | grep '^stopped ')"
after | grep '^ok ' | grep -qv ' sigchld 2$' && fail "a SIGCHLD came after restore: $(after | grep '^ok ' | tail -n 1)"
for k in "$KID" "$KID2"; do
	proc_stat "$k" && [[ $S_STATE == T ]] || fail "pid $k is not stopped after restore (state ${S_STATE:-gone})"
done
after | grep -q '^tick' && fail "a stopped child ran after restore"
log "after restore: the collected stop not reported again, no SIGCHLD"

# the pending report: still there, with the stop signal
touch "$T/stop.ready.go"
wait_for 10 "the pending report of pid $KID2" eval "after | grep -q '^stopped2 '"
got=$(after | awk '$1 == "stopped2" {print $2; exit}')
[[ $got == 20 ]] || fail "after restore waitpid(WUNTRACED) reports the second child stopped by signal $got, not 20 (SIGTSTP)"
log "the pending stop report came, SIGTSTP"

kill -CONT "$KID" "$KID2"
wait_for 10 "'continued'" eval "after | grep -q '^continued$'"
wait_for 10 "'continued2'" eval "after | grep -q '^continued2$'"
wait_for 10 "the children to run" eval "after | grep -q '^tick'"
assert_tree_running "$P"

# SA_NOCLDSTOP: no SIGCHLD before the dump, none to drop at restore
# (LOG, lines and after() now of this tree)
LOG=$T/stop2.log
diag_add "$LOG"
start_workload P2 "$T/stop2.ready" -- "$WL/fidelity" stop "$LOG" "$T/stop2.ready" nocldstop
wait_grep "$LOG" '^ok 1 sigchld 0$'
tree_snapshot "$P2" >"$T/tree2.before"
ckpt_dump "$P2" "$T/img2"
assert_tree_gone "$P2"
lines=$(line_count "$LOG")
ckpt_restore "$T/img2"
assert_same_tree "$T/tree2.before" "$P2"
wait_for 10 "2 ok lines after restore" eval '(( $(after | grep -c "^ok ") >= 2 ))'
after | grep '^ok ' | grep -qv ' sigchld 0$' && fail "SA_NOCLDSTOP: a SIGCHLD came after restore: $(after | grep '^ok ' | tail -n 1)"
after | grep -q '^tick' && fail "SA_NOCLDSTOP: a stopped child ran after restore"
log "SA_NOCLDSTOP: restored stopped, no SIGCHLD"
pass
