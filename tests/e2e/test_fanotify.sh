#!/bin/bash
# SPDX-License-Identifier: MIT
# fanotify (tests/workloads/fanwatch.py: python3 mapping a file it watches
# with an inode mark for opens, reads and closes). A fanotify group is not
# restored: the dump refuses it, naming the pid and the fd, and the
# program runs on untouched. It must not see the dump either: before the
# fix the dump read the mapped file for its content sum while the tree
# still ran (dump_prefetch.c), and the program got an event, with the
# dumper's pid, from a pre-dump (which dumps no fd and succeeds) and from
# the refused dump. Now a tree holding a fanotify group has no file read
# before the freeze, as one watching with dnotify (test_dnotify).
. "$(dirname "$0")/lib.sh"

D=$T/d
mkdir -p "$D"
head -c 65536 /dev/urandom >"$D/data.bin"
LOG=$T/fan.log
diag_add "$LOG"
start_workload P "$T/fan.ready" -- "$PYTHON" "$WLSRC/fanwatch.py" "$D/data.bin" "$LOG" "$T/fan.ready"
wait_grep "$LOG" '^ok 1$' 10
# (a file changed in the last second is not read for its sum)
wait_for 5 "data.bin's ctime to be 2 s old" ctime_settled "$D/data.bin"
grep -q '^event' "$LOG" && fail "events before any dump: $(grep '^event' "$LOG" | head -3)"
lines=$(line_count "$LOG")

ckptctl_run dump "$P" -D "$T/pre" --pre-dump || fail "the pre-dump failed: $(cat "$ERR")"
if ckptctl_run dump "$P" -D "$T/img"; then
	fail "the dump of a program holding a fanotify group succeeded"
fi
grep -qE "pid $P: fd [0-9]+: fanotify is not supported" "$ERR" ||
	fail "the error does not name the pid, the fd and fanotify: $(cat "$ERR")"
[[ ! -e $T/img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$P"
no_events_after "$LOG" "$lines" "a pre-dump and a refused dump"
log "refused, and the program saw nothing: $(head -c 200 "$ERR")"
kill_tree "$P"
pass
