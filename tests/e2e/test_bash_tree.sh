#!/bin/bash
# SPDX-License-Identifier: MIT
# A bash script with two children and a grandchild (subshell loops that
# count in shell variables): after restore every member runs with the same
# pid, parent, process group and session and its counter carries on.
. "$(dirname "$0")/lib.sh"

D=$T/bash
mkdir -p "$D"
start_workload MAIN "$D/ready" -- bash "$WLSRC/bashtree.sh" "$D"
read -r C1 <"$D/child1.pid"
read -r C2 <"$D/child2.pid"
read -r GC <"$D/grandchild.pid"
MEMBERS="main:$MAIN child1:$C1 child2:$C2 grandchild:$GC"
for m in $MEMBERS; do
	diag_add "$D/${m%%:*}.log"
	wait_lines "$D/${m%%:*}.log" 5
done

# Sanity of the shape before anything else.
proc_stat "$C1" && [[ $S_PPID == "$MAIN" ]] || fail "child1 $C1 is not a child of $MAIN"
proc_stat "$C2" && [[ $S_PPID == "$MAIN" ]] || fail "child2 $C2 is not a child of $MAIN"
proc_stat "$GC" && [[ $S_PPID == "$C2" ]] || fail "grandchild $GC is not a child of $C2"

# Transient `sleep` children come and go (and are "bash" between their fork
# and their exec): compare the four members only.
pids_snapshot "$MAIN" "$C1" "$C2" "$GC" >"$T/tree.before"
ckpt_dump "$MAIN" "$D/img"
assert_tree_gone "$MAIN"
assert_gone "$MAIN" "$C1" "$C2" "$GC"
declare -A lines
for m in $MEMBERS; do
	lines[${m%%:*}]=$(line_count "$D/${m%%:*}.log")
done

ckpt_restore "$D/img"
[[ $RESTORED_PID == "$MAIN" ]] || fail "restored root pid $RESTORED_PID, dumped $MAIN"
assert_same_pids "$T/tree.before" "$MAIN" "$C1" "$C2" "$GC"
for m in $MEMBERS; do
	name=${m%%:*}
	wait_lines "$D/$name.log" $((lines[$name] + 10)) 15
done
assert_tree_running "$MAIN" "^sleep$"
assert_same_pids "$T/tree.before" "$MAIN" "$C1" "$C2" "$GC"

for m in $MEMBERS; do
	name=${m%%:*} pid=${m#*:}
	awk -v want="pid=$pid" '
		$1 != want { print FILENAME ":" NR ": " $0 " (expected " want ")"; bad = 1; exit }
		{ split($2, a, "="); if (a[2] != NR) { print FILENAME ":" NR ": counter " a[2] ", expected " NR; bad = 1; exit } }
		END { exit bad }' "$D/$name.log" || fail "$name ($pid): counter not continuous across the restore"
	log "$name pid $pid: counted ${lines[$name]} before, $(line_count "$D/$name.log") now"
done
pass
