#!/bin/bash
# SPDX-License-Identifier: MIT
# A deleted cwd, shared by a parent and its child (python3): after restore
# both are again in one empty, removed directory (same inode for both, link
# count 0, mode 0751, getcwd() fails with ENOENT as before, /proc/PID/cwd
# ends in " (deleted)"), and nothing appears where it was.
. "$(dirname "$0")/lib.sh"

LOG=$T/delcwd.log
: >"$LOG"
diag_add "$LOG"
start_workload DC "$T/dc.ready" -- "$PYTHON" "$WLSRC/delcwd.py" "$T/gone" "$LOG" "$T/dc.ready"
# the child may have logged before the parent removed the directory: wait
# for a line of each written after the removal
wait_grep "$LOG" '^child .* nlink 0 ' 10
wait_grep "$LOG" '^parent .* nlink 0 ' 10
KID=$(awk '$1 == "child" { print $2; exit }' "$LOG")
tree_snapshot "$DC" >"$T/tree.before"

# state LINES: "ino nlink mode getcwd" of parent and child agree with each other
check_state()
{
	local p c
	p=$(awk '$1 == "parent" { l = $4 " " $6 " " $8 " " $10 } END { print l }' "$LOG")
	c=$(awk '$1 == "child" { l = $4 " " $6 " " $8 " " $10 } END { print l }' "$LOG")
	[[ -n $p && $p == "$c" ]] || fail "$1: parent and child differ: '$p' / '$c'"
	[[ $p == *" 0 751 No_such_file_or_directory" ]] || fail "$1: cwd state is '$p'"
	[[ $(readlink /proc/"$DC"/cwd) == "$T/gone"*" (deleted)" ]] ||
		fail "$1: /proc/$DC/cwd is $(readlink /proc/"$DC"/cwd)"
	log "$1: both in one removed directory: $p"
}
check_state "before the dump"

ckpt_dump "$DC" "$T/img"
assert_tree_gone "$DC"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$DC" ]] || fail "restored root pid $RESTORED_PID, dumped $DC"
assert_same_tree "$T/tree.before" "$DC"
wait_lines "$LOG" $((lines + 4)) 10
check_state "after the restore"
[[ ! -e $T/gone ]] || fail "$T/gone appeared"
compgen -G "$T/gone.ckpt-*" >/dev/null && fail "a temporary directory was left: $(echo "$T"/gone.ckpt-*)"
pass
