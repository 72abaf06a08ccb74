#!/bin/bash
# SPDX-License-Identifier: MIT
# The size of a process's private futex hash (Linux 6.16+,
# prctl(PR_FUTEX_HASH); tests/workloads/futexhash.py, python3 with a
# thread: 128 slots, or 0, the global hash). The kernel gives a process a
# default hash (16 slots here) with its first thread: before the fix the
# restored programs read that back ("bad: slots 16, was 128"). Now the dump
# saves the size and the restore sets it once the threads exist; a forged
# size is refused by the verifier.
. "$(dirname "$0")/lib.sh"

WLSRC=$CKPT_SRC/tests/workloads
"$PYTHON" -c 'import ctypes, sys; sys.exit(ctypes.CDLL(None).prctl(78, 2, 0, 0, 0) < 0)' ||
	fail "this kernel has no PR_FUTEX_HASH (Linux 6.16+)"

for slots in 128 0; do
	LOG=$T/fh$slots.log
	diag_add "$LOG"
	start_workload P "$T/fh$slots.ready" -- "$PYTHON" "$WLSRC/futexhash.py" "$LOG" "$T/fh$slots.ready" "$slots"
	wait_grep "$LOG" '^ok 1$' 10
	grep -qE "^start $P slots $slots default [0-9]+$" "$LOG" || fail "the workload did not set $slots slots: $(head -n 1 "$LOG")"
	tree_snapshot "$P" >"$T/tree.before"
	rm -rf "$T/img"
	ckpt_dump "$P" "$T/img"
	assert_tree_gone "$P"
	[[ $("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" get "$T/img" "core-$P.img" 0 40) == "$slots" ]] ||
		fail "core-$P.img: futex_hash_slots is not $slots"
	if ((slots)); then
		refused_forged "$T/img" "core-$P.img" 0 40 3 "field futex_hash_slots: 3 is not 0 or a power of two" "$T/tree.before"
	fi
	lines=$(line_count "$LOG")
	ckpt_restore "$T/img"
	[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
	wait_grep_after "$LOG" "$lines" '^ok '
	sleep 0.3
	grep '^bad' "$LOG" && fail "$slots slots: the size of the futex hash changed"
	log "$slots slots: kept"
	kill_tree "$P"
done
pass
