#!/bin/bash
# SPDX-License-Identifier: MIT
# POSIX message queues (tests/workloads/mqueue.c: a queue made by the
# program holding two messages, taken one per SIGUSR1). Before the fix the
# dump took the queue's fd for a regular file at the path of its name
# ("/NAME") and exited 0, and the restore failed ("file /NAME: No such
# file or directory"), or would have opened a file of that path in its
# place. Now the queue is opened again by name and only the queue dumped
# will do: the restored program takes its two messages in priority order
# and one a client sent after the restore; a queue unlinked before the
# dump, or unlinked or made again before the restore, and a notification
# registered by the program, are refused, naming the queue.
. "$(dirname "$0")/lib.sh"

Q=/ckpt-test-$$
at_exit "$WL/mqueue" unlink "$Q" 2>/dev/null
LOG=$T/mq.log
diag_add "$LOG"

# take WANT: a SIGUSR1 makes the program take one message: it logs "got WANT"
take()
{
	local lines
	lines=$(line_count "$LOG")
	kill -USR1 "$P"
	wait_grep_after "$LOG" "$lines" '^got '
	[[ $(tail -n +$((lines + 1)) "$LOG" | grep -m1 '^got ') == "got $1" ]] ||
		fail "the program took '$(tail -n +$((lines + 1)) "$LOG" | grep -m1 '^got ')', not 'got $1'"
}

start_workload P "$T/mq.ready" -- "$WL/mqueue" "$LOG" "$T/mq.ready" "$Q"
wait_grep "$LOG" '^ok 1$' 10
tree_snapshot "$P" >"$T/tree.before"

ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
# the queue made again under its name: another queue, refused
"$WL/mqueue" unlink "$Q" && "$PYTHON" - "$Q" <<'EOF' || fail "a queue of the same name could not be made"
import ctypes, os, sys
rt = ctypes.CDLL(None, use_errno=True)
rt.mq_open.restype = ctypes.c_int
q = rt.mq_open(sys.argv[1].encode(), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600, None)
sys.exit(0 if q >= 0 else 1)
EOF
ckptctl_run restore "$T/img" && fail "the restore took another queue of the same name"
grep -qF "POSIX message queue $Q: the queue of that name is not the one dumped" "$ERR" ||
	fail "the restore's error does not name the queue: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree.before"
"$WL/mqueue" unlink "$Q"
ckptctl_run restore "$T/img" && fail "the restore went on without the queue"
grep -qF "POSIX message queue $Q: no queue has that name" "$ERR" ||
	fail "the restore's error does not say the queue is gone: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree.before"

# the queue there, as dumped: the same queue with its messages
start_workload P "$T/mq2.ready" -- "$WL/mqueue" "$LOG" "$T/mq2.ready" "$Q"
wait_grep "$LOG" '^ok 1$' 10
tree_snapshot "$P" >"$T/tree.before"
rm -rf "$T/img"
CKPT_FAULT=mqueue-dump ckptctl_run dump "$P" -D "$T/failed" && fail "CKPT_FAULT=mqueue-dump: the dump succeeded"
grep -qF mqueue-dump "$ERR" || fail "mqueue-dump: the error does not name the step: $(cat "$ERR")"
ckpt_dump "$P" "$T/lr.img" --leave-running
take "two 5"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
for step in mqueue-verify mqueue-open; do
	CKPT_FAULT=$step ckptctl_run restore "$T/img" && fail "CKPT_FAULT=$step: the restore succeeded"
	grep -qF "$step" "$ERR" || fail "$step: the error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
done
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
assert_same_tree "$T/tree.before" "$P"
wait_grep_after "$LOG" "$lines" '^ok '
take "one 1"
"$WL/mqueue" send "$Q" three || fail "the client could not send into $Q"
take "three 0"
take "none"
grep '^bad' "$LOG" && fail "the queue's attributes changed"
log "the restored program took its queue's messages and the client's"
kill_tree "$P"

# unlinked before the dump: refused, the program runs on
"$WL/mqueue" unlink "$Q"
start_workload P "$T/mq3.ready" -- "$WL/mqueue" "$LOG" "$T/mq3.ready" "$Q"
wait_grep "$LOG" '^ok 1$' 10
"$WL/mqueue" unlink "$Q"
ckptctl_run dump "$P" -D "$T/refused" && fail "a queue unlinked was dumped"
grep -qF "POSIX message queue $Q (deleted): it was unlinked" "$ERR" || fail "not refused for the unlinked queue: $(cat "$ERR")"
take "two 5"
kill_tree "$P"

# a notification the program registered: refused
start_workload P "$T/mq4.ready" -- "$WL/mqueue" "$LOG" "$T/mq4.ready" "$Q" notify
wait_grep "$LOG" '^ok 1$' 10
ckptctl_run dump "$P" -D "$T/refused" && fail "a queue with a notification of the tree was dumped"
grep -qF "POSIX message queue $Q: pid $P registered a notification (mq_notify)" "$ERR" ||
	fail "not refused for the notification: $(cat "$ERR")"
take "two 5"
kill_tree "$P"
pass
