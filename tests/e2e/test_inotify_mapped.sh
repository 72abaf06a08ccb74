#!/bin/bash
# SPDX-License-Identifier: MIT
# A dump must not be seen by the program it dumps. A program that maps a
# file privately and watches it and its directory with inotify for opens,
# reads and closes (tests/workloads/inmapped.py, python3) gets an event for
# every open and read of that file. The dump checksums the files a program
# maps (their identity: fd-kinds.md, "File identity") and opened each
# mapping's file in its freeze: before the fix every try of the dump queued
# events, each try was withdrawn for them (events not read yet), and the
# dump was refused after 2 s, the program having seen dozens of opens it
# never made. Now the files the tree watches are neither opened nor read
# (their identity is kept without a content sum), and the dump is seen by
# nothing: a --leave-running dump, then a killing dump and its restore,
# leave the program's log without a single event, same pid, same bytes.
# The program also holds a FIFO of that directory with 6 bytes in it: the
# restore refills it through a helper of its own, whose close the
# restored watch saw (IN_CLOSE_WRITE) until inotify instances were made
# after every other file (fd_kind.open_late).
. "$(dirname "$0")/lib.sh"

D=$T/d
mkdir -p "$D"
head -c 65536 /dev/urandom >"$D/data.bin"
mkfifo "$D/fifo"
LOG=$T/w.log
diag_add "$LOG"
start_workload P "$T/w.ready" -- "$PYTHON" "$WLSRC/inmapped.py" "$D" "$LOG" "$T/w.ready"
wait_grep "$LOG" '^ok 2 ' 10
grep -q '^event' "$LOG" && fail "events before any dump: $(grep '^event' "$LOG" | head -3)"
crc=$(awk '$1 == "ok" { c = $3 } END { print c }' "$LOG")

# quiet_after LINES WHAT: no event in the log after LINES (no_events_after),
# the mapped bytes and the FIFO's 6 bytes as they were
quiet_after()
{
	no_events_after "$LOG" "$1" "$2"
	tail -n +$(($1 + 1)) "$LOG" | awk -v c="$crc" '$1 == "ok" && ($3 != c || $4 != 6) { bad = 1 } END { exit bad }' ||
		fail "$2: the program's mapped bytes or its FIFO's 6 bytes changed: $(tail -n 1 "$LOG")"
}

lines=$(line_count "$LOG")
ckpt_dump "$P" "$T/lr" --leave-running -v
grep -q "attempt" "$ERR" && fail "the --leave-running dump had to try again: $(grep attempt "$ERR" | head -2)"
quiet_after "$lines" "--leave-running dump"

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
