#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-process memory settings seen only in what happens next
# (tests/workloads/mmflags.c): mlockall(MCL_FUTURE), with and without
# MCL_ONFAULT, locks (and faults in) every area mapped later, and
# coredump_filter says what a core dump holds; an area's NUMA policy
# (mbind) where its pages go. A process with each, and one with neither,
# map a fresh area every 100 ms and check VmLck, mincore, their filter and
# the policies of two areas (one private, one shared): after --leave-running and after the restore nothing
# changed (before the fix the restored processes mapped unlocked areas and
# had the restorer's filter and no area policy). The dump finds the same
# policies whether the kernel reader tells which areas may have one or each
# area is asked. Forged values are refused by the verifier.
. "$(dirname "$0")/lib.sh"

LOG=$T/mmflags.log
diag_add "$LOG"
start_workload M "$T/mm.ready" -- "$WL/mmflags" "$LOG" "$T/mm.ready"
for n in main onfault plain; do
	wait_grep "$LOG" "^ok $n 1$" 10
done
grep -q '^bad' "$LOG" && fail "the workload saw a change before any dump: $(grep '^bad' "$LOG" | head -3)"
# what each is: locked and faulted in, locked on fault, neither
# (policies: MPOL_BIND 2, MPOL_INTERLEAVE|MPOL_F_STATIC_NODES 0x8003,
# MPOL_PREFERRED 1, node 0 each)
for want in "main locked 64 resident 16 filter 0x7f mpol 0x2 0x1 0x8003 0x1" \
	"onfault locked 64 resident 0 filter 0x23 mpol 0x1 0x1 0x8003 0x1" \
	"plain locked 0 resident 0 filter 0x33 mpol 0 0 0x8003 0x1"; do
	grep -qE "^start ${want%% *} [0-9]+ ${want#* }$" "$LOG" ||
		fail "the workload did not set what this test is about ($want): $(grep '^start' "$LOG")"
done
tree_snapshot "$M" >"$T/tree.before"
(($(wc -l <"$T/tree.before") == 3)) || fail "expected 3 processes: $(cat "$T/tree.before")"

# seen_ok_after LINES WHAT: every process logged "ok" after line LINES, no "bad"
seen_ok_after()
{
	local n
	for n in main onfault plain; do
		wait_for 10 "'ok $n' after $2" eval "tail -n +$(($1 + 1)) '$LOG' | grep -q '^ok $n '"
	done
	tail -n +$(($1 + 1)) "$LOG" | grep '^bad' && fail "$2: a process's settings changed"
	return 0
}

lines=$(line_count "$LOG")
ckpt_dump "$M" "$T/lr.img" --leave-running
seen_ok_after "$lines" "--leave-running"
# the areas with a policy are the same whether the kernel reader says which
# may have one or every area is asked (CKPT_FAULT=kread-areas)
CKPT_FAULT=kread-areas ckpt_dump "$M" "$T/lr-ask.img" --leave-running
policies() # DIR: "pid start policy" of every area with one
{
	local f
	for f in "$1"/mm-*.img; do
		"$CKPTCTL" show "$1" "${f##*/}" | "$PYTHON" -c '
import json, sys
for v in json.load(sys.stdin)["entries"][0].get("vmas", []):
    if v.get("mempolicy"):
        print(sys.argv[1], v["start"], json.dumps(v["mempolicy"], sort_keys=True))' "${f##*/}"
	done
}
policies "$T/lr.img" >"$T/pol.reader"
policies "$T/lr-ask.img" >"$T/pol.asked"
# main's two areas, onfault's two, plain's shared one
(($(wc -l <"$T/pol.reader") == 5)) || fail "not the 5 areas with a policy the workload made: $(cat "$T/pol.reader")"
diff -u "$T/pol.asked" "$T/pol.reader" || fail "the kernel reader's areas gave other policies than asking each area"

ckpt_dump "$M" "$T/img"
assert_tree_gone "$M"
[[ $("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$M.img" 0 34) == 2 ]] ||
	fail "core-$M.img: mlockall is not MCL_FUTURE (2)"
[[ $("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$M.img" 0 35) == 127 ]] ||
	fail "core-$M.img: coredump_filter is not 0x7f"

for forged in "34 1 field mlockall: 0x1 is not 0, MCL_FUTURE or MCL_FUTURE|MCL_ONFAULT" \
	"35 1024 field coredump_filter: 0x400 has bits above 0x1ff"; do
	read -r field value want <<<"$forged"
	refused_forged "$T/img" "core-$M.img" 0 "$field" "$value" "$want" "$T/tree.before"
done
# main's two areas with a policy (field 10 of an area): bound (2) and
# interleaved with static nodes (0x8003); the first of them forged
modes=() first=
for ((k = 0; k < 4096; k++)); do
	"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "mm-$M.img" 0 "14@$k.1" >/dev/null 2>&1 || break
	mode=$("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "mm-$M.img" 0 "14@$k.10.1" 2>/dev/null) || continue
	modes+=("$mode")
	[[ -n $first ]] || first=$k
done
[[ " ${modes[*]} " == *" 2 "* && " ${modes[*]} " == *" 32771 "* && ${#modes[@]} == 2 ]] ||
	fail "mm-$M.img: area policies ${modes[*]:-none}, not 2 and 32771"
refused_forged "$T/img" "mm-$M.img" 0 "14@$first.10.1" 7 \
	"vmas[$first].mempolicy: mode 0x7 with 1 words of nodes is not" "$T/tree.before"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$M" ]] || fail "restored pid $RESTORED_PID, dumped $M"
assert_same_tree "$T/tree.before" "$M"
seen_ok_after "$lines" "the restore"
sleep 0.3
seen_ok_after "$lines" "the restore"
log "each process still locks what it maps next as before, and kept its coredump_filter"
kill_tree "$M"
pass
