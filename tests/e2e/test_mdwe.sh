#!/bin/bash
# SPDX-License-Identifier: MIT
# Memory-deny-write-execute (PR_SET_MDWE) across dump and restore
# (tests/workloads/mdwe.c): a process that set it, a child that inherited
# it, one that set it with PR_MDWE_NO_INHERIT and its child without it. Each
# checks its own flags (PR_GET_MDWE) and whether mprotect may still make a
# page executable, every 100 ms: after the restore nothing changed, in every
# process (before the fix the flag was not saved: the restored processes had
# lost it, and mprotect made their pages executable again).
. "$(dirname "$0")/lib.sh"

LOG=$T/mdwe.log
diag_add "$LOG"
start_workload M "$T/mdwe.ready" -- "$WL/mdwe" "$LOG" "$T/mdwe.ready"
for n in main heir lone free; do
	wait_grep "$LOG" "^ok $n 1$" 10
done
grep -q '^bad' "$LOG" && fail "the workload saw a change before any dump: $(grep '^bad' "$LOG" | head -3)"
# what each process is: main and heir refuse exec gain, lone too (no
# inherit), free does not (EACCES is 13)
for want in "main mdwe 1 gain -13" "heir mdwe 1 gain -13" "lone mdwe 3 gain -13" "free mdwe 0 gain 1"; do
	grep -qE "^start ${want% mdwe*} [0-9]+ mdwe${want#* mdwe}$" "$LOG" ||
		fail "the workload did not set what this test is about ($want): $(grep '^start' "$LOG")"
done
tree_snapshot "$M" >"$T/tree.before"
(($(wc -l <"$T/tree.before") == 4)) || fail "expected 4 processes: $(cat "$T/tree.before")"

# --leave-running: untouched (the dump's own remote calls map no writable
# code: its batch pages are r-x from the start)
lines=$(line_count "$LOG")
ckpt_dump "$M" "$T/lr.img" --leave-running
for n in main heir lone free; do
	wait_for 10 "'ok $n' after --leave-running" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok $n '"
done

ckpt_dump "$M" "$T/img"
assert_tree_gone "$M"
"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$M.img" 0 32 >"$T/mdwe.saved" ||
	fail "no mdwe field in core-$M.img"
[[ $(<"$T/mdwe.saved") == 1 ]] || fail "core-$M.img: mdwe $(<"$T/mdwe.saved"), not 1"

# forged flags (NO_INHERIT alone, bits the kernel has not): refused by the
# verifier, nothing made
for forged in 2 4; do
	refused_forged "$T/img" "core-$M.img" 0 32 "$forged" \
		"core-$M.img: field mdwe: $(printf '%#x' "$forged") is not 0, 1 or 3" "$T/tree.before"
done
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$M" ]] || fail "restored pid $RESTORED_PID, dumped $M"
assert_same_tree "$T/tree.before" "$M"
for n in main heir lone free; do
	wait_for 10 "'ok $n' after the restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok $n '"
done
sleep 0.3
grep '^bad' "$LOG" && fail "a process saw its MDWE state change across dump and restore"
log "every process kept its MDWE flags and what mprotect allows it"
kill_tree "$M"
pass
