#!/bin/bash
# SPDX-License-Identifier: MIT
# pidfds survive dump and restore: a python3 program holding a pidfd of its
# child, an O_NONBLOCK one, and one of a process outside its tree. After
# the restore the child's pidfd polls and waits (waitid P_PIDFD gets its
# exit status), the outside one signals that very process
# (pidfd_send_signal), the flags are kept. A pidfd of an outside process
# that exited after the dump fails the restore, naming it.
. "$(dirname "$0")/lib.sh"

LOG=$T/pidfds.log
diag_add "$LOG"

outside()
{
	sleep 300 </dev/null >/dev/null 2>&1 &
	OUTSIDE=$!
	TRACKED+=("$OUTSIDE")
}

outside
start_workload PF "$T/pf.ready" -- "$PYTHON" "$WLSRC/pidfds.py" "$LOG" "$T/pf.ready" "$T/go" "$OUTSIDE"
wait_grep "$LOG" '^tick 2' 10
KID=$(awk '$1 == "child" { print $2 }' "$LOG")
tree_snapshot "$PF" >"$T/tree.before"
ckpt_dump "$PF" "$T/img"
assert_tree_gone "$PF"

# the outside process exits meanwhile: that pidfd cannot be made again
kill -KILL "$OUTSIDE"
assert_gone "$OUTSIDE"
sums=$(image_sums "$T/img")
if ckptctl_run restore "$T/img"; then
	fail "restored although the process of a saved pidfd has exited"
fi
grep -q "pidfd of pid $OUTSIDE (outside the tree): that process has exited" "$ERR" ||
	fail "unexpected error: $(cat "$ERR")"
[[ $(image_sums "$T/img") == "$sums" ]] || fail "the failed restore changed the images"
assert_gone "$PF" "$KID"
log "refused: $(tail -n 1 "$ERR")"

# again with an outside process that stays
outside
start_workload PF "$T/pf2.ready" -- "$PYTHON" "$WLSRC/pidfds.py" "$LOG" "$T/pf2.ready" "$T/go" "$OUTSIDE"
wait_grep "$LOG" '^tick 2' 10
KID=$(awk '$1 == "child" { k = $2 } END { print k }' "$LOG")
tree_snapshot "$PF" >"$T/tree.before"
# the kind's fault steps: a failed dump leaves the program running, a
# failed restore leaves nothing
CKPT_FAULT=pidfd-dump ckptctl_run dump "$PF" -D "$T/f.img" && fail "pidfd-dump: the dump succeeded"
grep -q pidfd-dump "$ERR" || fail "pidfd-dump: unexpected error: $(cat "$ERR")"
assert_running "$PF"
ckpt_dump "$PF" "$T/img2"
assert_tree_gone "$PF"
for step in pidfd-verify pidfd-open; do
	CKPT_FAULT=$step ckptctl_run restore "$T/img2" && fail "$step: the restore succeeded"
	grep -q -- "$step" "$ERR" || fail "$step: unexpected error: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
done
ckpt_restore "$T/img2"
[[ $RESTORED_PID == "$PF" ]] || fail "restored root pid $RESTORED_PID, dumped $PF"
assert_same_tree "$T/tree.before" "$PF"
lines=$(line_count "$LOG")
wait_lines "$LOG" $((lines + 2)) 10
touch "$T/go"
wait_grep "$LOG" '^(outside killed|FAIL)' 10
grep -q FAIL "$LOG" && fail "$(grep FAIL "$LOG")"
grep -q '^child exited 7$' "$LOG" || fail "waitid(P_PIDFD) after restore: $(tail -n 3 "$LOG")"
assert_gone "$OUTSIDE"
wait_grep "$LOG" '^nonblock ok$' 5
log "after restore: waitid through the pidfd, pidfd_send_signal to the outside process, O_NONBLOCK kept"
pass
