#!/bin/bash
# SPDX-License-Identifier: MIT
# Deleted files that are still mapped (tests/workloads/delmap.c): one mapped
# MAP_SHARED by a parent and its child (their counters keep moving only if
# both map the same file again), one mapped MAP_PRIVATE with a page written,
# one both open as fd 10 and mapped MAP_SHARED (a write through the fd must
# show in the mapping). The dump saves each once (SHMEM_DELETED objects in
# files.img; the fd names its object); the restore recreates them unnamed:
# nothing appears in their directory, fd 10 and the mapping are one inode,
# the fd keeps its position, and the program's own checks keep passing.
. "$(dirname "$0")/lib.sh"

D=$T/del
mkdir -p "$D/files"
diag_add "$D/log.txt"
start_workload W "$D/ready" -- "$WL/delmap" "$D"
wait_lines "$D/log.txt" 5
grep -n FAIL "$D/log.txt" && fail "delmap failed before the dump"
[[ -z $(ls -A "$D/files") ]] || fail "$D/files is not empty: $(ls -A "$D/files")"
tree_snapshot "$W" >"$T/tree.before"

ckpt_dump "$W" "$T/img"
assert_tree_gone "$W"
lines=$(line_count "$D/log.txt")
before=$(tail -n 1 "$D/log.txt")
ckptctl_run show "$T/img" files.img || fail "ckptctl show files.img failed: $(cat "$ERR")"
for f in shared.bin priv.bin both.bin; do
	grep -q "\"$D/files/$f\"" "$OUT" || fail "files.img does not name $D/files/$f"
done
(($(grep -c '"SHMEM_DELETED"' "$OUT") == 3)) || fail "files.img does not hold 3 deleted file objects"
grep -q '"shmem_id"' "$OUT" || fail "the fd of both.bin does not name its object (shmem_id)"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$W" ]] || fail "restored root pid $RESTORED_PID, dumped $W"
assert_same_tree "$T/tree.before" "$W"
wait_lines "$D/log.txt" $((lines + 30)) 20
assert_running "$W"
grep -n FAIL "$D/log.txt" && fail "delmap found a difference after restore"
last=$(tail -n 1 "$D/log.txt")
(($(awk '{ print $4 }' <<<"$last") >= $(awk '{ print $4 }' <<<"$before") + 10)) ||
	fail "the child's counter in shared.bin is stuck: '$before' -> '$last'"
log "$before -> $last"
[[ -z $(ls -A "$D/files") ]] || fail "files appeared in $D/files: $(ls -A "$D/files")"
link=$(readlink /proc/"$W"/fd/10)
[[ $link == "$D/files/#"*" (deleted)" ]] || fail "fd 10 is '$link', expected $D/files/#N (deleted)"
ino=$(stat -L -c %i /proc/"$W"/fd/10)
awk -v i="$ino" '$5 == i && $2 ~ /s$/ { f = 1 } END { exit !f }' /proc/"$W"/maps ||
	fail "fd 10 (inode $ino) is not the inode mapped shared: $(grep deleted /proc/"$W"/maps)"
(($(grep -c "$D/files/#.* (deleted)" /proc/"$W"/maps) == 3)) ||
	fail "the parent does not map 3 deleted files: $(grep deleted /proc/"$W"/maps)"
pass
