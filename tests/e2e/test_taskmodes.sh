#!/bin/bash
# SPDX-License-Identifier: MIT
# Modes a program sets with prctl and watches itself, none shown in /proc
# (tests/workloads/taskmodes.c): each thread's TSC mode (PR_SET_TSC),
# machine-check kill policy (PR_MCE_KILL) and NUMA memory policy
# (set_mempolicy), different in each of three threads, and the process's
# KSM flag (PR_SET_MEMORY_MERGE). Each thread
# logs "bad" when anything changes: after --leave-running and after the
# restore nothing did (before the fix the restored threads had the
# restorer's modes: TSC allowed, the default policies, no KSM). Forged
# values are refused by the verifier; CPUID faulting and speculation
# controls, which this machine may not let a task set, are restored
# exactly or the restore fails naming them (forged into the images here).
. "$(dirname "$0")/lib.sh"

LOG=$T/taskmodes.log
diag_add "$LOG"
start_workload M "$T/tm.ready" -- "$WL/taskmodes" "$LOG" "$T/tm.ready"
for n in main late plain; do
	wait_grep "$LOG" "^ok $n 1$" 10
done
grep -q '^bad' "$LOG" && fail "the workload saw a change before any dump: $(grep '^bad' "$LOG" | head -3)"
# what each thread is: main TSC faulting, early kill; late TSC allowed,
# late kill; plain as a new thread is
# (MPOL_BIND 0x2, MPOL_PREFERRED with MPOL_F_STATIC_NODES 0x8001, node 0)
for want in "main tsc 2 mce 1 .* mpol 0x2 0x1 xcomp 0x[0-9a-f]+" \
	"late tsc 1 mce 0 .* mpol 0x8001 0x1 xcomp 0x[0-9a-f]+" "plain tsc 1 mce 2 .* mpol 0 0 xcomp 0x[0-9a-f]+"; do
	grep -qE "^start ${want%% *} [0-9]+ ${want#* }$" "$LOG" ||
		fail "the workload did not set what this test is about ($want): $(grep '^start' "$LOG")"
done
merge=$(awk '$1 == "start" && $2 == "main" { print $11 }' "$LOG")
log "PR_GET_MEMORY_MERGE in the workload: $merge"
tree_snapshot "$M" >"$T/tree.before"

# seen_ok_after LINES: every thread logged "ok" after line LINES
seen_ok_after()
{
	local n
	for n in main late plain; do
		wait_for 10 "'ok $n' after line $1" eval "tail -n +$(($1 + 1)) '$LOG' | grep -q '^ok $n '"
	done
}

lines=$(line_count "$LOG")
ckpt_dump "$M" "$T/lr.img" --leave-running
seen_ok_after "$lines"
grep -q '^bad' "$LOG" && fail "--leave-running changed a mode: $(grep '^bad' "$LOG" | head -3)"

ckpt_dump "$M" "$T/img"
assert_tree_gone "$M"
for f in 23 24 25; do
	"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$M.img" 0 "13.$f" >/dev/null ||
		fail "core-$M.img: threads[0] has no field $f (TSC mode, MCE kill, CPUID)"
done
[[ $("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$M.img" 0 13.23) == 2 ]] ||
	fail "core-$M.img: the main thread's TSC mode is not 2 (PR_TSC_SIGSEGV)"
if [[ $merge == 1 ]]; then
	[[ $("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$M.img" 0 33) == 1 ]] ||
		fail "core-$M.img: memory_merge is not 1"
fi

# forge PATH VALUE: a copy of the images with field PATH of core-$M.img
# record 0 set to VALUE, in $T/forged
forge()
{
	rm -rf "$T/forged"
	cp -a "$T/img" "$T/forged"
	"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" set "$T/forged" "core-$M.img" 0 "$1" "$2" >/dev/null ||
		fail "imgforge set $1 $2 failed"
}

# values no kernel gives: refused by the verifier, nothing made
for forged in "13.23 3 tsc_mode: 3 is not 1 or 2" "13@1.24 7 mce_kill: 7 is out of range 0..2" \
	"13.25 2 cpuid: 2 is not 0 or 1" "13.26 2 speculation control store bypass: 0x2 is not" \
	"13.30.1 9 mempolicy: mode 0x9 with 1 words of nodes is not"; do
	read -r path value want <<<"$forged"
	refused_forged "$T/img" "core-$M.img" 0 "$path" "$value" "$want" "$T/tree.before"
done

# what a task may choose where the machine lets it: restored exactly (the
# thread sees it) or refused naming it, and nothing is left
# (xcomp: the process's xstate features as saved, and AMX tile data, 18)
xcomp=$("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$M.img" 0 36) ||
	fail "core-$M.img: no xcomp_perm field"
amx=$((xcomp | 1 << 18))
# PATH|VALUE|what the main thread then logs|the error otherwise
for forged in "13.25|0|cpuid 1 -> 0|CPUID faulting: arch_prctl(ARCH_SET_CPUID, 0)" \
	"13.26|5|spec [0-9]* [0-9]* [0-9]* -> 5 |speculation control store bypass: prctl(PR_SET_SPECULATION_CTRL, 0, 0x4)" \
	"36|$amx|xcomp $(printf '%#x' "$xcomp") -> $(printf '%#x' "$amx")|AMX tile data the process was allowed: arch_prctl(ARCH_REQ_XCOMP_PERM, 18)"; do
	IFS='|' read -r path value seen want <<<"$forged"
	forge "$path" "$value"
	lines=$(line_count "$LOG")
	if ckptctl_run restore "$T/forged"; then
		# this machine has it: the main thread sees the forged value
		seen_ok_after "$lines"
		tail -n +$((lines + 1)) "$LOG" | grep -q "^bad main: .*$seen" ||
			fail "restored with $path = $value, but the main thread does not see it"
		log "$path = $value: restored, the thread sees it"
		kill_tree "$M"
		continue
	fi
	grep -qF "$want" "$ERR" || fail "forged $path = $value: '$want' not in the error: $(cat "$ERR")"
	log "$path = $value: refused: $(grep -F "$want" "$ERR" | head -1)"
	assert_restore_left_nothing "$T/tree.before"
done

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$M" ]] || fail "restored pid $RESTORED_PID, dumped $M"
assert_same_tree "$T/tree.before" "$M"
seen_ok_after "$lines"
sleep 0.3
tail -n +$((lines + 1)) "$LOG" | grep '^bad' && fail "a thread saw its modes change across dump and restore"
log "every thread kept its TSC mode, machine-check and memory policies, the process its KSM flag ($merge)"
kill_tree "$M"
pass
