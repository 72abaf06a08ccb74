#!/bin/bash
# SPDX-License-Identifier: MIT
# A FIFO removed while open (lib/kinds/pipe.c): tests/workloads/delfifo.py
# holds its read end in the parent and its write end in the child, with
# data in the buffer, and removed it. After restore (and after a
# --leave-running dump) the buffer is read intact, what the child writes
# flows to the parent, both fds are one FIFO with no name (link count 0,
# its mode, a /proc link in the same directory ending in " (deleted)"), and
# nothing is left in the directory. Refused: a restore whose directory is
# gone (before anything is made), a dump of a removed FIFO that has another
# hard link, a restore whose temporary FIFO was replaced before it was
# opened: by a symlink to another FIFO, a hard link of it, or another FIFO
# made at the name (that one left as it was).
. "$(dirname "$0")/lib.sh"

# nothing but the workload's own flag files in $D: no FIFO, no temporary name
left_nothing()
{
	local x
	x=$(ls -A "$D" | grep -v -e '^child-wrote$' -e '^go$' -e '^read-buffer$')
	[[ -z $x ]] || fail "$1 left $x in $D"
}
no_fail() { ! grep -q FAIL "$1" || fail "the workload failed: $(grep FAIL "$1")"; }
all_ok()
{
	wait_grep "$1" 'ALL OK|FAIL' 20
	no_fail "$1"
	for what in buffer flow deleted; do
		grep -qx "ok $what" "$1" || fail "no 'ok $what' in $1: $(cat "$1")"
	done
}

# --leave-running: the buffer is not consumed
D=$T/lr
mkdir -p "$D"
diag_add "$T/lr.log"
start_workload P "$T/lr.ready" -- "$PYTHON" "$WLSRC/delfifo.py" "$D" "$T/lr.log" "$T/lr.ready"
for step in fifo-dump dump-write; do
	if CKPT_FAULT=$step ckptctl_run dump "$P" -D "$T/$step.img"; then
		fail "$step: dump succeeded despite CKPT_FAULT"
	fi
	assert_tree_running "$P"
done
ckpt_dump "$P" "$T/lr.img" --leave-running
assert_tree_running "$P"
touch "$D/go"
all_ok "$T/lr.log"
log "failed dumps and --leave-running: the buffer is intact"
kill_tree "$P"
untrack "$P"

# dump, restore
D=$T/run
mkdir -p "$D"
diag_add "$T/run.log"
start_workload P "$T/run.ready" -- "$PYTHON" "$WLSRC/delfifo.py" "$D" "$T/run.log" "$T/run.ready"
tree_snapshot "$P" >"$T/before"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
image_sums "$T/img" >"$T/sums"
for step in fifo-verify fifo-open; do
	if CKPT_FAULT=$step ckptctl_run restore "$T/img" --json; then
		fail "$step: restore succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/before"
	left_nothing "$step: a failed restore"
done
# The temporary name replaced before the restore opens it (CKPT_PAUSE at
# fifo-made; a FIFO's directory may be writable by others): a symlink to
# another FIFO, then a hard link of it, are refused, and that FIFO keeps
# its mode and owner (the restore sets those of what it opens)
for how in symlink hardlink fifo; do
	paused_restore fifo-made "$T/img" --json
	tmp=$(find "$D" -maxdepth 1 -name '.ckpt-fifo-*' | head -n 1)
	[[ -p $tmp ]] || fail "$how: no FIFO at a temporary name in $D: $(ls -A "$D")"
	swap_made "$how" "$tmp" "$T/other"
	swap_refused "$how at the temporary name" "$tmp" "$tmp is not the FIFO made" "$T/before"
	left_nothing "$how at the temporary name"
done
image_sums "$T/img" | diff -u "$T/sums" - || fail "the failed restores changed the images"
# its directory gone: refused before anything is made, naming the FIFO and the directory
mv "$D" "$D.away"
if ckptctl_run restore "$T/img" --json; then
	fail "restore succeeded with the removed FIFO's directory gone"
fi
grep -q "removed FIFO $D/f is made again in its directory $D" "$ERR" ||
	fail "the refusal does not name the FIFO and its directory: $(cat "$ERR")"
assert_restore_left_nothing "$T/before"
mv "$D.away" "$D"
ckpt_restore "$T/img"
assert_same_tree "$T/before" "$P"
left_nothing "the restore"
touch "$D/go"
all_ok "$T/run.log"
log "after restore: the buffer intact, writes flow, one FIFO with no name"
kill_tree "$P"
untrack "$P"

# a FIFO removed under one name but linked under another: refused
mkdir -p "$T/hl"
mkfifo "$T/hl/a"
ln "$T/hl/a" "$T/hl/b"
start_workload H "$T/hl.ready" -- "$PYTHON" -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
os.unlink(sys.argv[1])
open(sys.argv[2] + ".tmp", "w").write(f"{os.getpid()}\n")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(1000)' "$T/hl/a" "$T/hl.ready"
if ckptctl_run dump "$H" -D "$T/hl.img"; then
	fail "dump of a removed FIFO with another hard link succeeded"
fi
msg=$(cat "$ERR")
log "hard link: refused: $msg"
[[ $msg == *"pid $H: fd "* && $msg == *"$T/hl/a"* ]] || fail "the refusal does not name pid, fd and FIFO: $msg"
assert_running "$H"
kill_tree "$H"
untrack "$H"
pass
