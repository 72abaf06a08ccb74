#!/bin/bash
# SPDX-License-Identifier: MIT
# dnotify (fcntl F_NOTIFY on a directory fd; tests/workloads/dnotify.py,
# python3 counting the SIGIO of each file created in its directory). No
# interface shows a watch, nor sets one for another process: before the
# fix the dump exited 0 and the restored program never heard of a new file
# again ("notified 1" for ever). Now the dump refuses a directory fd with an
# owner (setting a watch makes its process the owner), naming the pid and
# the fd; the program runs on untouched, its watch too. A watch for reads
# (DN_ACCESS) of a directory holding a file the program maps: refused too,
# and the program gets no signal from the dump (before the fix, one for
# the dump's read of that file for its sum). A directory held open
# without a watch is dumped and restored as before.
. "$(dirname "$0")/lib.sh"

D=$T/dir
mkdir -p "$D"
# (made first: a file changed in the last second is not read for its sum)
A=$T/adir
mkdir -p "$A"
head -c 65536 /dev/urandom >"$A/data.bin"
LOG=$T/dn.log
diag_add "$LOG"
start_workload P "$T/dn.ready" -- "$PYTHON" "$WLSRC/dnotify.py" "$D" "$LOG" "$T/dn.ready"
wait_grep "$LOG" '^ok 1 notified 0$' 10
touch "$D/first"
wait_grep "$LOG" '^ok [0-9]+ notified 1$' 10

if ckptctl_run dump "$P" -D "$T/img"; then
	fail "the dump of a program with a dnotify watch succeeded"
fi
grep -qE "pid $P: fd [0-9]+: a directory with an owner \(process $P\), as a dnotify watch \(fcntl F_NOTIFY\) leaves it" "$ERR" ||
	fail "the error does not name the pid, the fd and the watch: $(cat "$ERR")"
[[ ! -e $T/img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$P"
lines=$(line_count "$LOG")
touch "$D/second"
wait_grep_after "$LOG" "$lines" '^ok [0-9]+ notified 2$'
log "refused, the watch still works: $(head -c 200 "$ERR")"
kill_tree "$P"
untrack "$P"

# a watch for reads of a file the program maps (DN_ACCESS). The dump is
# refused as above, and the program must not hear of it: before the fix
# the dump read the mapped file for its content sum while the tree still
# ran (dump_prefetch.c), and the program got a signal for a read it never
# made ("notified 1") from a dump that then failed
LOG3=$T/access.log
diag_add "$LOG3"
start_workload R "$T/access.ready" -- "$PYTHON" "$WLSRC/dnotify.py" "$A" "$LOG3" \
	"$T/access.ready" access "$A/data.bin"
wait_grep "$LOG3" '^ok 1 notified 0$' 10
wait_for 5 "data.bin to be older than a second" ctime_settled "$A/data.bin"
# a pre-dump (memory only, no fd dumped) is not refused; it must not be
# heard of either
ckptctl_run dump "$R" -D "$T/access.pre" --pre-dump ||
	fail "the pre-dump failed: $(cat "$ERR")"
if ckptctl_run dump "$R" -D "$T/access.img"; then
	fail "the dump of a program with a dnotify watch for reads succeeded"
fi
grep -qE "pid $R: fd [0-9]+: a directory with an owner" "$ERR" ||
	fail "the error does not name the pid, the fd and the watch: $(cat "$ERR")"
assert_running "$R"
lines=$(line_count "$LOG3")
wait_grep_after "$LOG3" "$lines" '^ok [0-9]+ notified [0-9]+$'
grep -qE '^ok [0-9]+ notified [1-9]' "$LOG3" &&
	fail "the pre-dump or the refused dump read a file of the watched directory: $(grep -m1 -E 'notified [1-9]' "$LOG3")"
log "refused, and the program saw no read: $(tail -1 "$LOG3")"
kill_tree "$R"
untrack "$R"

# the same directory held open without a watch: dumped and restored
LOG2=$T/plain.log
diag_add "$LOG2"
start_workload Q "$T/plain.ready" -- "$PYTHON" "$WLSRC/dnotify.py" "$D" "$LOG2" "$T/plain.ready" nowatch
wait_grep "$LOG2" '^ok 1 notified 0$' 10
ckpt_dump "$Q" "$T/plain.img"
assert_tree_gone "$Q"
lines=$(line_count "$LOG2")
ckpt_restore "$T/plain.img"
[[ $RESTORED_PID == "$Q" ]] || fail "restored pid $RESTORED_PID, dumped $Q"
wait_grep_after "$LOG2" "$lines" '^ok [0-9]+ notified 0$'
kill_tree "$Q"
pass
