#!/bin/bash
# SPDX-License-Identifier: MIT
# Files deleted but still open survive dump and restore
# (tests/workloads/deleted.c: an O_RDWR file with a dup sharing its offset,
# an O_RDWR|O_APPEND one, an O_WRONLY one, all unlinked): their content is in
# the pages image (each deleted file is a shared memory object named by its
# files.img entries), the restore recreates them unnamed in their
# directory (nothing appears there), and the program finds the same content,
# positions, sizes and modes and goes on. A saved content altered in the
# image (its checksum in inventory.img fixed) is refused naming the file. A
# deleted file that is also mapped is restored as one file with its fds. The
# fault steps deleted-dump, deleted-verify and shmem-create (the object made
# again) fail cleanly.
. "$(dirname "$0")/lib.sh"

D=$T/dir
mkdir -p "$D"
# dir_list: the names in $D (nothing may appear there)
dir_list() { find "$D" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort; }
diag_add "$D/log.txt"
start_workload W "$D/ready" -- "$WL/deleted" "$D"
wait_lines "$D/log.txt" 5
grep -n FAIL "$D/log.txt" && fail "deleted workload failed before the dump"
dir_list >"$T/ls.before"
[[ $(readlink /proc/"$W"/fd/10) == "$D/data.bin (deleted)" ]] ||
	fail "fd 10 is $(readlink /proc/"$W"/fd/10), expected $D/data.bin (deleted)"
tree_snapshot "$W" >"$T/tree.before"

ckpt_dump "$W" "$T/img"
assert_tree_gone "$W"
iters=$(line_count "$D/log.txt")
last=$(tail -n 1 "$D/log.txt")

# The content is in the image.
ckptctl_run show "$T/img" files.img || fail "ckptctl show files.img failed: $(cat "$ERR")"
for f in data.bin append.bin wronly.bin; do
	grep -q "\"$D/$f\"" "$OUT" || fail "files.img does not name $D/$f"
done
grep -q '"deleted": true' "$OUT" || fail "files.img has no entry with deleted: true"
grep -q '"SHMEM_DELETED"' "$OUT" || fail "files.img has no shared memory object of a deleted file"
grep -lq DELETED-CONTENT-MARKER "$T/img"/pages-*.img ||
	fail "no pages image holds the content of data.bin"

# A corrupted content is refused, naming the file, and leaves nothing.
cp -a "$T/img" "$T/bad"
"$PYTHON" - "$T/bad" <<'EOF' || fail "could not corrupt the saved content"
import os, sys
sys.path.insert(0, os.path.join(os.environ["CKPT_SRC"], "tests", "e2e"))
import imgforge
d = sys.argv[1]
for name in os.listdir(d):
    if not name.startswith("pages-"):
        continue
    path = os.path.join(d, name)
    data = bytearray(open(path, "rb").read())
    # the last one: the object's content follows the task's own memory
    i = data.rfind(b"DELETED-CONTENT-MARKER")
    if i >= 0:
        break
else:
    sys.exit("marker not found in the pages images")
data[i] ^= 0x20
open(path, "wb").write(data)
imgforge.fix_inventory(d, name, bytes(data))
EOF
ckptctl_run restore "$T/bad" --json && fail "a restore with a corrupted deleted file content succeeded"
((RC == 1)) || fail "restore of a corrupted image exited $RC: $(cat "$ERR")"
log "corrupted content: $(head -n 1 "$ERR" | cut -c1-200)"
grep -q "$D/data.bin" "$ERR" || fail "the error does not name $D/data.bin: $(cat "$ERR")"
grep -qi "corrupt\|crc" "$ERR" || fail "the error does not say the content is corrupt: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree.before"
dir_list | diff -u "$T/ls.before" - || fail "a failed restore left files in $D"

# The restore's fault steps: refused naming the step, nothing left behind.
image_sums "$T/img" >"$T/sums"
for step in deleted-verify shmem-create; do
	CKPT_FAULT=$step ckptctl_run restore "$T/img" --json && fail "$step: the restore succeeded"
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	dir_list | diff -u "$T/ls.before" - || fail "$step: the failed restore left files in $D"
done
image_sums "$T/img" | diff -u "$T/sums" - || fail "the failed restores changed the images"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$W" ]] || fail "restored root pid $RESTORED_PID, dumped $W"
assert_same_tree "$T/tree.before" "$W"
wait_lines "$D/log.txt" $((iters + 10)) 15
assert_running "$W"
for fd in 10 11 12 13; do
	link=$(readlink /proc/"$W"/fd/"$fd")
	[[ $link == "$D/#"*" (deleted)" ]] || fail "fd $fd after restore is '$link', expected $D/#N (deleted)"
done
[[ $(stat -L -c %i /proc/"$W"/fd/10) == $(stat -L -c %i /proc/"$W"/fd/11) ]] ||
	fail "fds 10 and 11 no longer share their file"
log "fd 10 is now $(readlink /proc/"$W"/fd/10); fd 13 holds $(stat -L -c %s /proc/"$W"/fd/13) bytes"
# wronly.bin cannot be read back by the program: check it from here.
awk '$0 != sprintf("w%06d", NR - 1) { print "line " NR ": " $0; bad = 1; exit } END { exit bad }' \
	/proc/"$W"/fd/13 || fail "wronly.bin is not w000000, w000001... after restore"
dir_list | diff -u "$T/ls.before" - || fail "files appeared in $D after the restore"

# The dump's fault step: refused, the program goes on untouched.
CKPT_FAULT=deleted-dump ckptctl_run dump "$W" -D "$T/fault.img" && fail "deleted-dump: the dump succeeded"
grep -q -- deleted-dump "$ERR" || fail "deleted-dump: dump error does not name the step: $(cat "$ERR")"
[[ ! -e $T/fault.img/inventory.img ]] || fail "deleted-dump: a failed dump left a checkpoint"
assert_running "$W"
lines=$(line_count "$D/log.txt")
wait_lines "$D/log.txt" $((lines + 3)) 10

# The restored files (now DIR/#N (deleted)) go through a second round.
ckpt_dump "$W" "$T/img2"
assert_tree_gone "$W"
lines=$(line_count "$D/log.txt")
ckpt_restore "$T/img2"
[[ $RESTORED_PID == "$W" ]] || fail "second restore: root pid $RESTORED_PID, dumped $W"
wait_lines "$D/log.txt" $((lines + 5)) 15
assert_running "$W"
dir_list | diff -u "$T/ls.before" - || fail "files appeared in $D after the second restore"
kill_tree "$W"
untrack "$W"

grep -n FAIL "$D/log.txt" && fail "the workload found a difference after restore"
awk '$1 != "iter" || $2 != NR - 1 || $3 != "ok" { print "log.txt:" NR ": " $0; bad = 1; exit } END { exit bad }' \
	"$D/log.txt" || fail "log.txt is not continuous"
log "$(line_count "$D/log.txt") iterations, $iters before the dump (last: $last)"

# A deleted file that is also mapped (and open as fds 10 and 11): one
# object, its content saved once; restored unnamed, nothing visible, the
# mapping and the fds still one file (more in test_deleted_mapped.sh).
M=$T/map
mkdir -p "$M"
diag_add "$M/log.txt"
start_workload MW "$M/ready" -- "$WL/deleted" "$M" map
wait_lines "$M/log.txt" 2
ls -A "$M" | sort >"$T/ls.map"
tree_snapshot "$MW" >"$T/tree.map"
ckpt_dump "$MW" "$T/map.img"
assert_tree_gone "$MW"
lines=$(line_count "$M/log.txt")
ckpt_restore "$T/map.img"
assert_same_tree "$T/tree.map" "$MW"
wait_lines "$M/log.txt" $((lines + 5)) 15
assert_running "$MW"
grep -n FAIL "$M/log.txt" && fail "the mapping workload failed after restore"
ls -A "$M" | sort | diff -u "$T/ls.map" - || fail "files appeared in $M after the restore"
ino=$(stat -L -c %i /proc/"$MW"/fd/10)
awk -v i="$ino" '$5 == i { f = 1 } END { exit !f }' /proc/"$MW"/maps ||
	fail "fd 10 (inode $ino) and the mapping of data.bin are no longer one file"
kill_tree "$MW"
untrack "$MW"
pass
