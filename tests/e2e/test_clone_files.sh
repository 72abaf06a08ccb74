#!/bin/bash
# SPDX-License-Identifier: MIT
# Two processes sharing one fd table (clone(CLONE_FILES) without
# CLONE_THREAD, tests/workloads/fidelity.c clonefiles) come back sharing
# one table: the child is made with clone3(CLONE_FILES) and one of them
# installs the fds. After restore both list the same fds, a file the child
# opens appears in the parent's table and a close by the parent closes it
# in the child's.
. "$(dirname "$0")/lib.sh"

LOG=$T/cf.log
READY=$T/cf.ready
diag_add "$LOG"
start_workload C "$READY" -- "$WL/fidelity" clonefiles "$LOG" "$READY"
read -r _ KID _ <<<"$(grep '^child ' "$LOG")"
wait_grep "$LOG" '^ok main 1$'
wait_grep "$LOG" '^ok child 1$'
ckpt_dump "$C" "$T/img"
assert_gone "$C" "$KID"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$C" ]] || fail "restored as pid $RESTORED_PID, not $C"
[[ $(awk '/^PPid:/ {print $2}' "/proc/$KID/status") == "$C" ]] || fail "pid $KID is not the child of $C after restore"
lines=$(line_count "$LOG")
wait_for 10 "'ok main' after restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok main '"
wait_for 10 "'ok child' after restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok child '"
[[ "$(ls /proc/$C/fd)" == "$(ls /proc/$KID/fd)" ]] ||
	fail "the two processes list different fds: $(ls /proc/$C/fd | tr '\n' ' ') / $(ls /proc/$KID/fd | tr '\n' ' ')"
# one table: what one opens the other has, what one closes the other loses
touch "$READY.open"
wait_grep "$LOG" '^child opened [0-9]+$'
wait_grep "$LOG" '^main sees [0-9]+$'
[[ $(awk '$2 == "opened" {print $3}' "$LOG") == $(awk '$2 == "sees" {print $3}' "$LOG") ]] ||
	fail "the parent found another fd than the one the child opened"
touch "$READY.close"
wait_grep "$LOG" '^main closed [0-9]+$'
wait_grep "$LOG" '^child sees [0-9]+ closed$'
grep '^bad' "$LOG" && fail "the workload saw a change"
kill_tree "$C"
pass
