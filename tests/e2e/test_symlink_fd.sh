#!/bin/bash
# SPDX-License-Identifier: MIT
# A handle on a symbolic link itself (O_PATH|O_NOFOLLOW, python3) comes back
# as a handle on the same link (fstat says a link, readlinkat(fd, "") its
# target); a link that points elsewhere by the time of the restore is
# refused naming it, nothing left running.
. "$(dirname "$0")/lib.sh"

D=$T/d LOG=$T/olink.log
mkdir -p "$D"
diag_add "$LOG"
start_workload OL "$T/ol.ready" -- "$PYTHON" "$WLSRC/olink.py" "$D" "$LOG" "$T/ol.ready"
wait_lines "$LOG" 2 10
[[ $(tail -n 1 "$LOG") == "link 1 target-of-the-link" ]] || fail "before: $(tail -n 1 "$LOG")"
tree_snapshot "$OL" >"$T/tree.before"
CKPT_FAULT=symlink-dump ckptctl_run dump "$OL" -D "$T/f.img" && fail "symlink-dump: the dump succeeded"
grep -q symlink-dump "$ERR" || fail "symlink-dump: unexpected error: $(cat "$ERR")"
assert_running "$OL"
ckpt_dump "$OL" "$T/img"
assert_tree_gone "$OL"
for step in symlink-verify symlink-open; do
	CKPT_FAULT=$step ckptctl_run restore "$T/img" && fail "$step: the restore succeeded"
	grep -q -- "$step" "$ERR" || fail "$step: unexpected error: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
done

ln -sfn elsewhere "$D/link"
ckptctl_run restore "$T/img" && fail "restored although the link points elsewhere now"
grep -q "symbolic link $D/link now points to elsewhere" "$ERR" || fail "unexpected error: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree.before"
ln -sfn target-of-the-link "$D/link"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$OL" ]] || fail "restored root pid $RESTORED_PID, dumped $OL"
wait_lines "$LOG" $((lines + 3)) 10
[[ $(tail -n 1 "$LOG") == "link 1 target-of-the-link" ]] || fail "after: $(tail -n 1 "$LOG")"
log "after the restore: $(tail -n 1 "$LOG")"
pass
