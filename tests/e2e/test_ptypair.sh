#!/bin/bash
# SPDX-License-Identifier: MIT
# A pty pair held inside the tree: ptypair opens a pty, puts the slave in
# raw mode with a 40x132 window, and its child (a session leader with the
# slave as controlling terminal, the foreground group) answers pings sent
# through the master. After dump and restore the pair still works: the
# pings go on, the child still sees raw mode, 40x132, its controlling
# terminal and itself in the foreground.
. "$(dirname "$0")/lib.sh"

LOGF=$T/ptypair.log
diag_add "$LOGF"
start_workload P "$T/ready" -- "$WL/ptypair" "$LOGF" "$T/ready"
wait_grep "$LOGF" "^got pong [0-9]+ rows=40 cols=132 raw=1 ctty=1 fg=1$"
C=$(awk '$1 == "pty" { print $4; exit }' "$LOGF")
[[ $C =~ ^[0-9]+$ ]] || fail "no child pid in $LOGF"
log "$(head -n 1 "$LOGF")"
tree_snapshot "$P" >"$T/tree.before"

# a failed dump of the terminals leaves the program running
if CKPT_FAULT=tty-dump ckptctl_run dump "$P" -D "$T/img0"; then
	fail "CKPT_FAULT=tty-dump: the dump succeeded"
fi
grep -q tty-dump "$ERR" || fail "tty-dump: the error does not name the step: $(cat "$ERR")"
assert_tree_running "$P"

ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
gone "$C" || assert_gone "$C"
n=$(line_count "$LOGF")
ckptctl_run show "$T/img" files.img || fail "ckptctl show files.img failed"
grep -q 'TTY_MASTER' "$OUT" || fail "files.img shows no pty master: $(cat "$OUT")"

# a failed restore of the terminals leaves nothing behind
for step in tty-verify tty-open; do
	if CKPT_FAULT=$step ckptctl_run restore "$T/img"; then
		fail "CKPT_FAULT=$step: the restore succeeded"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: the error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	log "$step: restore refused, nothing left"
done

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$P" ]] || fail "restored root pid $RESTORED_PID, dumped $P"
assert_same_tree "$T/tree.before" "$P"
wait_lines "$LOGF" $((n + 20)) 15
assert_tree_running "$P"

# after the restore: every answer intact, numbers growing; one ping may
# have been in flight in the pty at dump time (its data is not saved)
tail -n +$((n + 1)) "$LOGF" | awk '
	$1 == "timeout" { t++; if (t > 2) { print "too many timeouts: " $0; bad = 1; exit } next }
	$0 !~ /^got pong [0-9]+ rows=40 cols=132 raw=1 ctty=1 fg=1$/ { print "line: " $0; bad = 1; exit }
	prev != "" && $3 <= prev { print "pong " $3 " after " prev; bad = 1; exit }
	{ prev = $3 }
	END { exit bad }' || fail "the pty pair does not work the same after restore"
log "after restore: $(tail -n 1 "$LOGF")"
kill_tree "$P"
untrack "$P"
pass
