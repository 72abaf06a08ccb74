#!/bin/bash
# SPDX-License-Identifier: MIT
# Events an inotify instance holds and the program has not read yet
# (tests/workloads/inwatch.py, python3, reads only while a gate file
# exists). No call puts an event back into a queue: before the fix the
# dump exited 0 and the restored program never saw them. Now an instance
# with events is a state the program clears itself: the dump lets it run
# and tries again, and refuses after its wait, naming pid, fd and bytes,
# the program untouched (it reads the event afterwards). A program that
# reads its events is dumped and restored, every event seen once. An event
# that comes while a killing dump commits withdraws the checkpoint; the
# next try holds the program that read it.
. "$(dirname "$0")/lib.sh"

D=$T/dir
GATE=$T/gate
mkdir -p "$D"
LOG=$T/w.log
diag_add "$LOG"
start_workload P "$T/w.ready" -- "$PYTHON" "$WLSRC/inwatch.py" "$D" "$LOG" "$T/w.ready" "$GATE"
wait_grep "$LOG" '^ok 1$' 10

# ---- never read: refused after the wait, the event still queued --------------------------
touch "$D/first"
if ckptctl_run dump "$P" -D "$T/refused.img"; then
	fail "the dump of a program with an inotify event not read succeeded"
fi
grep -qE "pid $P: fd [0-9]+: inotify instance: it has [0-9]+ bytes of events not read yet .*still so after" "$ERR" ||
	fail "the refusal does not name the pid, fd, the events and the wait: $(cat "$ERR")"
[[ ! -e $T/refused.img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$P"
touch "$GATE"
wait_grep "$LOG" '^event first$' 10
log "never read: refused, then read by the program: $(head -c 200 "$ERR")"

# ---- read as they come: dumped, restored, nothing lost or doubled ---------------------------
touch "$D/second"
wait_grep "$LOG" '^event second$' 10
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
touch "$D/third"
wait_grep_after "$LOG" "$lines" '^event third$'

# ---- an event while a killing dump commits: withdrawn, tried again ---------------------------
rm -f "$GATE"
CKPT_PAUSE=dump-finish:$T/fin,dump-retry:$T/retry timeout -k 5 120 "$CKPTCTL" dump "$P" -D "$T/late.img" \
	>"$T/bg.out" 2>"$T/bg.err" &
DUMPER=$!
diag_add "$T/bg.err"
wait_for 60 "the dump to pause at dump-finish" test -e "$T/fin.paused"
touch "$D/late"
touch "$T/fin"
wait_for 30 "the checkpoint to be withdrawn and the dump to try again" test -e "$T/retry.paused"
assert_running "$P"
touch "$GATE"
wait_grep "$LOG" '^event late$' 10
touch "$T/retry"
wait "$DUMPER" || fail "the dump failed after the late event was read: $(cat "$T/bg.err")"
grep -q "events came while the checkpoint was committed" "$T/bg.err" ||
	log "(the withdrawal is not in the dump's output: $(cat "$T/bg.err"))"
assert_tree_gone "$P"
lines=$(line_count "$LOG")
ckpt_restore "$T/late.img"
touch "$D/fourth"
wait_grep_after "$LOG" "$lines" '^event fourth$'
for name in first second third late fourth; do
	n=$(grep -c "^event $name$" "$LOG")
	((n == 1)) || fail "event $name logged $n times"
done
log "every event seen once"
kill_tree "$P"
pass
