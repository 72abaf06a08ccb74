#!/bin/bash
# SPDX-License-Identifier: MIT
# Syscall user dispatch (tests/workloads/sud.c: an emulator's setup, libc's
# code exempt, everything else raising SIGSYS; one thread with a selector
# that blocks for good, one without dispatch, one without a selector).
# Before the fix the dump's first remote call raised SIGSYS: every dump,
# even --leave-running, killed the program. Now the dump switches the
# dispatch off while the tree is frozen and puts it back before letting it
# go (also after a failure), saves it, and the restore sets it again after
# its last remote call: each thread's raw getpid is answered as before.
. "$(dirname "$0")/lib.sh"

LOG=$T/sud.log
diag_add "$LOG"
start_workload S "$T/sud.ready" -- "$WL/sud" "$LOG" "$T/sud.ready"
for n in main plain nosel; do
	wait_grep "$LOG" "^ok $n 1$" 10
done
for want in "main 4242" "nosel 4343"; do
	grep -qE "^start ${want% *} [0-9]+ getpid ${want#* }$" "$LOG" ||
		fail "the workload's dispatch is not on ($want): $(grep '^start' "$LOG")"
done
grep -qE '^start plain [0-9]+ getpid 4[23]4[23]$' "$LOG" && fail "plain: its getpid is emulated"
tree_snapshot "$S" >"$T/tree.before"

# alive_after LINES WHAT: the tree runs and every thread logged "ok" after
# line LINES, none "bad"
alive_after()
{
	local n
	for n in main plain nosel; do
		wait_for 10 "'ok $n' after $2" eval "tail -n +$(($1 + 1)) '$LOG' | grep -q '^ok $n '"
	done
	proc_stat "$S" && [[ $S_STATE != Z ]] || fail "$2: the program is dead"
	grep -q '^bad' "$LOG" && fail "$2: a thread's dispatch changed: $(grep '^bad' "$LOG" | head -3)"
	return 0
}

lines=$(line_count "$LOG")
ckpt_dump "$S" "$T/lr.img" --leave-running
alive_after "$lines" "a --leave-running dump"
# the dispatch of the main thread (libc exempt, a selector) is in the images
sud=$("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/lr.img" "core-$S.img" 0 13.29.1) ||
	fail "core-$S.img: the main thread has no sud field"
[[ $sud == 1 ]] || fail "core-$S.img: threads[0].sud.mode is $sud, not 1"

# a dump that fails once the dispatch of the first thread is off: put back
lines=$(line_count "$LOG")
CKPT_FAULT=sud-suspend-fail ckptctl_run dump "$S" -D "$T/failed.img" &&
	fail "CKPT_FAULT=sud-suspend-fail: the dump succeeded"
grep -q "injected failure after its dispatch was suspended" "$ERR" ||
	fail "the failed dump did not name the fault: $(cat "$ERR")"
alive_after "$lines" "a failed dump"

ckpt_dump "$S" "$T/img"
assert_tree_gone "$S"

# a mode no kernel has: refused by the verifier, nothing made
refused_forged "$T/img" "core-$S.img" 0 13.29.1 7 "field threads[0].sud: mode 7 " "$T/tree.before"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$S" ]] || fail "restored pid $RESTORED_PID, dumped $S"
assert_same_tree "$T/tree.before" "$S"
alive_after "$lines" "the restore"
sleep 0.3
grep '^bad' "$LOG" && fail "a thread's dispatch changed across dump and restore"
log "every thread's syscall user dispatch came back: emulated, plain, emulated without a selector"
kill_tree "$S"
pass
