#!/bin/bash
# SPDX-License-Identifier: MIT
# (i) Every restore stage forced to fail (CKPT_FAULT=restore-<stage>) leaves
# nothing behind: ckptctl exits non-zero naming the stage, no process holds
# any of the tree's pids, no ckpt-restore is left, and the images are
# unchanged. (ii) A queued remote call that the kernel refuses
# (CKPT_FAULT=rqueue-einval: the first mmap of a batch asks for 0 bytes)
# fails the restore naming that call, as one made alone would, in a batch
# and call by call (rsys-no-batch), leaving nothing. (iii) A task killed
# while it sets itself up is named, with its signal. A normal restore
# afterwards works.
. "$(dirname "$0")/lib.sh"

# A two-task tree: a parent blocked in wait4 on a child in nanosleep.
LOG=$T/wait4.log
diag_add "$LOG"
start_workload W4 "$T/w4.ready" -- "$WL/sleeper" wait4 "$LOG" "$T/w4.ready" 30
tree_snapshot "$W4" >"$T/tree.before"
(($(wc -l <"$T/tree.before") == 2)) || fail "expected a two-task tree: $(cat "$T/tree.before")"
ckpt_dump "$W4" "$T/img"
assert_tree_gone "$W4"
image_sums "$T/img" >"$T/sums.before"
STEPS=$(fault_steps restore)
log "restore fault steps: $STEPS"

for step in $STEPS; do
	if CKPT_FAULT=$step ckptctl_run restore "$T/img" --json; then
		fail "$step: restore succeeded despite CKPT_FAULT=$step"
	fi
	grep -q -- "${step#restore-}" "$ERR" || fail "$step: error does not name the stage: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	image_sums "$T/img" | diff -u "$T/sums.before" - || fail "$step: the failed restore changed the images"
	log "$step: $(head -c 200 "$ERR")"
done

for fault in rqueue-einval rqueue-einval,rsys-no-batch; do
	if CKPT_FAULT=$fault ckptctl_run restore "$T/img"; then
		fail "$fault: restore succeeded despite a refused mmap"
	fi
	grep -qE "pid [0-9]+: mmap of area [0-9a-fx]+-[0-9a-fx]+.*: Invalid argument" "$ERR" ||
		fail "$fault: error does not name the refused call: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	image_sums "$T/img" | diff -u "$T/sums.before" - || fail "$fault: the failed restore changed the images"
	log "$fault: $(head -c 200 "$ERR")"
done

# (iii) A task that dies without a word (killed while it sets itself up,
# held there by CKPT_PAUSE): the restorer's look at /proc finds it, the
# restore names it and how it died, and leaves nothing.
CHILD=$(awk -v p="$W4" '$2 == p { print $1 }' "$T/tree.before")
[[ $CHILD =~ ^[0-9]+$ ]] || fail "no child of $W4 in: $(cat "$T/tree.before")"
rm -f "$T/go.setup" "$T/go.setup.paused"
diag_add "$T/setup.err"
CKPT_PAUSE=restore-task-setup:$T/go.setup timeout -k 5 60 "$CKPTCTL" restore "$T/img" \
	>"$T/setup.out" 2>"$T/setup.err" &
RPID=$!
wait_for 20 "the restored tasks to pause in their setup" test -e "$T/go.setup.paused"
poll_for 10 eval "[[ -e /proc/$CHILD ]]" || fail "pid $CHILD does not exist while paused"
kill -KILL "$CHILD"
wait "$RPID" && fail "the restore succeeded though pid $CHILD was killed in its setup"
touch "$T/go.setup"
grep -q "pid $CHILD was killed by signal 9 while setting up fds and process state" \
	"$T/setup.err" || fail "the error does not name the task killed: $(cat "$T/setup.err")"
assert_restore_left_nothing "$T/tree.before"
image_sums "$T/img" | diff -u "$T/sums.before" - || fail "the failed restore changed the images"
log "a task killed in its setup: $(head -c 200 "$T/setup.err")"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$W4" ]] || fail "restored root pid $RESTORED_PID, dumped $W4"
assert_same_tree "$T/tree.before" "$W4"
assert_tree_running "$W4"
image_sums "$T/img" | diff -u "$T/sums.before" - || fail "the restore changed the images"
pass
