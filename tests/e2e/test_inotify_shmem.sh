#!/bin/bash
# SPDX-License-Identifier: MIT
# A dump must not be seen by the program it dumps (test_inotify_mapped for
# the files it maps privately). Here python3 (tests/workloads/inshared.py)
# maps a file of a tmpfs MAP_SHARED, a shared memory object whose content
# the dump saves by reading it, and watches its directory with inotify for
# opens, reads and closes. Before the fix the dump opened the object in
# its freeze: every try of a dump found the events it had caused queued,
# let the program read them and tried again, and was refused after 2 s,
# the program having seen dozens of opens it never made.
# Now the freeze only stat()s the object; it is opened once the fds are
# dumped, when the tree's watches are known, and the dump of a tree that
# watches an object whose content it must read, or that object's
# directory, for opens and reads is refused before any open, at once,
# naming the pid, the object and the watch: a --leave-running dump's
# program would see the reads when it runs on, and a killing dump's own
# reads would meet its check that no event came while the checkpoint was
# committed. The program runs on untouched, without an event. The same
# program watching the directory for files created and removed only is
# dumped and restored (same pid, same bytes, no event). A deleted file of
# that directory held open (write-only) is such an object too (its content
# is saved): before, the dump opened it in the freeze for its identity
# (/proc/PID/fd/N: the program's description cannot be read), and tried
# 17 times, the program seeing each open; now refused the same way. One
# in another directory, not watched, is dumped and restored.
. "$(dirname "$0")/lib.sh"

# start_inshared [MODE...]: inshared.py again (P, its first "ok" line, crc)
start_inshared()
{
	rm -f "$T/w.ready"
	start_workload P "$T/w.ready" -- "$PYTHON" "$WLSRC/inshared.py" "$D" "$LOG" "$T/w.ready" "$@"
	wait_grep_after "$LOG" "$(line_count "$LOG")" '^ok [0-9]+ '
	crc=$(awk '$1 == "ok" { c = $3 } END { print c }' "$LOG")
}

D=$(mktemp -d /dev/shm/ckpt-e2e-inshared.XXXXXX)
at_exit rm -rf "$D"
head -c 262144 /dev/urandom >"$D/seg"
LOG=$T/w.log
diag_add "$LOG"
start_workload P "$T/w.ready" -- "$PYTHON" "$WLSRC/inshared.py" "$D" "$LOG" "$T/w.ready"
wait_grep "$LOG" '^ok 2 ' 10
grep -q '^event' "$LOG" && fail "events before any dump: $(grep '^event' "$LOG" | head -3)"
crc=$(awk '$1 == "ok" { c = $3 } END { print c }' "$LOG")

# quiet_after LINES WHAT: no event in the log after LINES (no_events_after),
# the segment's bytes as they were
quiet_after()
{
	no_events_after "$LOG" "$1" "$2"
	tail -n +$(($1 + 1)) "$LOG" | awk -v c="$crc" '$1 == "ok" && $3 != c { bad = 1 } END { exit bad }' ||
		fail "$2: the segment's bytes changed: $(tail -n 1 "$LOG")"
}

# refused DIR ARGS...: the dump is refused at once, naming the object and
# the watch, and the program saw nothing of it
refused()
{
	local lines dir=$1
	shift
	lines=$(line_count "$LOG")
	if ckptctl_run dump "$P" -D "$dir" "$@"; then
		fail "a dump $* of a program watching its segment's directory succeeded"
	fi
	grep -qE "pid $P: shared memory object $D/$OBJ: the tree watches it or its directory with inotify" "$ERR" ||
		fail "the refusal does not name the pid, the object and the watch: $(cat "$ERR")"
	grep -q "tries" "$ERR" && fail "the dump tried again instead of refusing: $(cat "$ERR")"
	[[ ! -e $dir/inventory.img ]] || fail "a refused dump left a checkpoint"
	assert_running "$P"
	quiet_after "$lines" "the refused dump $*"
}
OBJ=seg
refused "$T/lr" --leave-running
refused "$T/kill"
log "refused: $(head -c 300 "$ERR")"
kill_tree "$P"
untrack "$P"

# a deleted file of the directory, held open
start_inshared deleted
OBJ=tmpf
refused "$T/lr2" --leave-running
refused "$T/kill2"
kill_tree "$P"
untrack "$P"

# a deleted file held open in a directory the program does not watch
mkdir -p "$T/other"
start_inshared deleted "$T/other"
lines=$(line_count "$LOG")
ckpt_dump "$P" "$T/other.img"
ckpt_restore "$T/other.img"
((RESTORED_PID == P)) || fail "restored as pid $RESTORED_PID, not $P"
quiet_after "$lines" "dump and restore of a deleted file elsewhere"
kill_tree "$P"
untrack "$P"

# watching the directory for creations and removals only: dumped, restored
start_inshared create
tree_snapshot "$P" >"$T/tree.before"
lines=$(line_count "$LOG")
ckpt_dump "$P" "$T/img" -v
grep -q "attempt" "$ERR" && fail "the dump had to try again: $(grep attempt "$ERR" | head -2)"
assert_tree_gone "$P"
ckpt_restore "$T/img"
((RESTORED_PID == P)) || fail "restored as pid $RESTORED_PID, not $P"
assert_same_tree "$T/tree.before" "$P"
quiet_after "$lines" "dump and restore"
kill_tree "$P"
pass
