#!/bin/bash
# SPDX-License-Identifier: MIT
# A directory removed while open (python3: an O_RDONLY fd, an O_PATH fd of
# another description, and a dup) comes back as one removed directory for
# all three fds (one inode), link count 0, mode 0705, empty, and creating a
# file in it still fails with ENOENT; nothing appears where it was. The
# directory made again replaced by a symlink, a hard link or another
# directory before its owner and mode are set: refused, that one untouched.
. "$(dirname "$0")/lib.sh"

LOG=$T/deldir.log
diag_add "$LOG"
start_workload DD "$T/dd.ready" -- "$PYTHON" "$WLSRC/deldir.py" "$T/gone" "$LOG" "$T/dd.ready"
wait_lines "$LOG" 2 10
want="ino same nlink 0 mode 705 list 0 create No_such_file_or_directory"
[[ $(tail -n 1 "$LOG") == "$want" ]] || fail "before the dump: $(tail -n 1 "$LOG")"
tree_snapshot "$DD" >"$T/tree.before"
ckpt_dump "$DD" "$T/img"
assert_tree_gone "$DD"
# its fault step: the restore fails naming it and leaves nothing (no
# directory where the removed one was)
CKPT_FAULT=dir-remade ckptctl_run restore "$T/img" --json && fail "dir-remade: the restore succeeded"
grep -q -- dir-remade "$ERR" || fail "dir-remade: the error does not name the step: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree.before"
[[ ! -e $T/gone ]] || fail "dir-remade: the failed restore left $T/gone"
# the directory made again replaced, before its owner and mode are set
# (CKPT_PAUSE at dir-remade), by a symlink to a FIFO, a hard link of it, or
# another directory: refused, and that one left as it was
for how in symlink hardlink dir; do
	paused_restore dir-remade "$T/img" --json
	[[ -d $T/gone ]] || fail "$how: paused at dir-remade, but $T/gone was not made"
	swap_made "$how" "$T/gone" "$T/other"
	swap_refused "$how at the directory made again" "$T/gone" \
		"the removed directory $T/gone made again as $T/gone was replaced" "$T/tree.before"
done
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$DD" ]] || fail "restored root pid $RESTORED_PID, dumped $DD"
assert_same_tree "$T/tree.before" "$DD"
wait_lines "$LOG" $((lines + 3)) 10
[[ $(tail -n 1 "$LOG") == "$want" ]] || fail "after the restore: $(tail -n 1 "$LOG")"
for fd in 3 4 5; do
	[[ $(readlink /proc/"$DD"/fd/$fd) == "$T/gone"*" (deleted)" ]] ||
		fail "fd $fd is $(readlink /proc/"$DD"/fd/$fd)"
done
[[ ! -e $T/gone ]] || fail "$T/gone appeared"
compgen -G "$T/gone.ckpt-*" >/dev/null && fail "a temporary directory was left"
log "after the restore: $(tail -n 1 "$LOG")"
pass
