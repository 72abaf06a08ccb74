#!/bin/bash
# SPDX-License-Identifier: MIT
# Shared and special memory (tests/workloads/shmem.c): a parent and its
# child share anonymous MAP_SHARED memory, a memfd (mapped and held as fd
# 20, sealed, at a position), a System V segment, a /dev/shm object and a
# POSIX semaphore, and keep ping-ponging counters through each of them. After
# dump and restore (same pids) the counters (and those of a file on disk
# mapped shared by both) keep moving (each side sees the
# other's writes), the memfd keeps its name, seals and position, the shared
# areas keep their names, the 64 GiB MAP_NORESERVE area is still there ("nr")
# with its content while the images stay small, and the madvise state
# (dc, wf, hg, nh) is back. A second restore of the same images after the
# SysV segment and the /dev/shm files are gone (as after a reboot) recreates
# them: same shmid, same content. A shared mapped file (on disk, on tmpfs)
# changed since the dump, or a shmid taken by another segment, is refused
# naming it; so is a recreated /dev/shm file that another file or a FIFO
# replaced before the restore opened it again (the rollback leaves those). The fault steps shmem-dump, memfd-dump, shmem-create and
# memfd-verify fail cleanly, and forged objects and areas are refused (or
# harmless), never a crash.
. "$(dirname "$0")/lib.sh"

D=$T/shm
mkdir -p "$D"
SHMID='' W=''
shm_cleanup()
{
	[[ -n $SHMID ]] && ipcrm -m "$SHMID" 2>/dev/null
	[[ -n ${OTHER_ID:-} ]] && ipcrm -m "$OTHER_ID" 2>/dev/null
	[[ -n $W ]] && rm -f "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"
	return 0
}
# shellcheck disable=SC2154 # rc is set inside the trap
trap 'rc=$?; shm_cleanup; (exit $rc); cleanup' EXIT

diag_add "$D/log.txt"
start_workload W "$D/ready" -- "$WL/shmem" "$D"
wait_lines "$D/log.txt" 5
grep -n FAIL "$D/log.txt" && fail "shmem workload failed before the dump"
area() { awk -v k="$1" '$1 == k { print $2 }' "$D/areas"; }
SHMID=$(area shmid)
CHILD=$(tail -n 1 "$D/log.txt" | awk '{ print $NF }')
[[ $CHILD =~ ^[0-9]+$ ]] || fail "no child pid in the log"

# the names of the shared areas of a task (the semaphore's temporary name,
# "sem.XXXXXX (deleted)", comes back as its real one: both count as sem.NAME)
shared_names()
{
	awk '$2 ~ /s$/ { $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }' /proc/"$1"/maps |
		sed -E 's#/dev/shm/sem\.[^ ]+( \(deleted\))?#/dev/shm/sem.NAME#' | sort
}
# vmflags ADDR PID: the VmFlags of the area starting at ADDR
vmflags()
{
	awk -v a="$1" 'index($1, a "-") == 1 { f = 1 } f && /^VmFlags/ { $1 = ""; print; exit }' \
		/proc/"$2"/smaps
}
# counters LINE: the child's six counters of a log line
counters() { awk '{ print $4, $5, $6, $7, $8, $9 }' <<<"$1"; }

shared_names "$W" >"$T/names.parent"
shared_names "$CHILD" >"$T/names.child"
for n in '/dev/zero (deleted)' '/memfd:ckpt-shm-test (deleted)' '/SYSV00000000 (deleted)' \
	"/dev/shm/ckpt-shm-test-$W" /dev/shm/sem.NAME "$D/disk.bin"; do
	grep -qxF "$n" "$T/names.parent" || fail "parent has no shared area '$n': $(cat "$T/names.parent")"
	grep -qxF "$n" "$T/names.child" || fail "child has no shared area '$n': $(cat "$T/names.child")"
done
tree_snapshot "$W" >"$T/tree.before"

# The dump's fault steps: refused naming them, the program goes on untouched.
for step in shmem-dump memfd-dump; do
	CKPT_FAULT=$step ckptctl_run dump "$W" -D "$T/$step.img" && fail "$step: the dump succeeded"
	grep -q -- "$step" "$ERR" || fail "$step: the error does not name the step: $(cat "$ERR")"
	[[ ! -e $T/$step.img/inventory.img ]] || fail "$step: a failed dump left a checkpoint"
	lines=$(line_count "$D/log.txt")
	wait_lines "$D/log.txt" $((lines + 3)) 10
	assert_running "$W"
done

ckpt_dump "$W" "$T/img"
assert_tree_gone "$W"
lines=$(line_count "$D/log.txt")
before=$(tail -n 1 "$D/log.txt")
size=$(du -sb "$T/img" | awk '{ print $1 }')
log "dumped after $lines lines ($before); images: $((size / 1024)) KiB"
((size < 64 * 1024 * 1024)) || fail "images are $size bytes for a 64 GiB reservation with 8 pages touched"
ipcs -m -i "$SHMID" >/dev/null 2>&1 || fail "System V segment $SHMID did not outlive the killed tree"
ckptctl_run show "$T/img" files.img || fail "ckptctl show files.img failed: $(cat "$ERR")"
for k in SHMEM_ANON SHMEM_MEMFD SHMEM_SYSV SHMEM_FILE; do
	grep -q "\"$k\"" "$OUT" || fail "files.img has no $k object"
done

# check_restored WHAT: same tree, counters moving past the dump's, names, flags
check_restored()
{
	local what=$1 last c0 c1 i
	[[ $RESTORED_PID == "$W" ]] || fail "$what: restored root pid $RESTORED_PID, dumped $W"
	assert_same_tree "$T/tree.before" "$W"
	wait_lines "$D/log.txt" $((lines + 30)) 20
	assert_running "$W"
	grep -n FAIL "$D/log.txt" && fail "$what: the workload found a difference after restore"
	last=$(tail -n 1 "$D/log.txt")
	read -ra c0 <<<"$(counters "$before")"
	read -ra c1 <<<"$(counters "$last")"
	for i in 0 1 2 3 4 5; do
		((c1[i] >= c0[i] + 10)) ||
			fail "$what: counter $i stuck: '$before' -> '$last' (sharing lost)"
	done
	log "$what: $before -> $last"
	shared_names "$W" | diff -u "$T/names.parent" - || fail "$what: parent's shared areas changed"
	shared_names "$CHILD" | diff -u "$T/names.child" - || fail "$what: child's shared areas changed"
	for f in big:nr dontfork:dc wipeonfork:wf hugepage:hg nohugepage:nh; do
		a=${f%:*} flag=${f#*:}
		[[ " $(vmflags "$(area "$a")" "$W") " == *" $flag "* ]] ||
			fail "$what: area $a at $(area "$a") lost VmFlag $flag: $(vmflags "$(area "$a")" "$W")"
	done
	ipcs -m -i "$SHMID" | grep -q 'nattch=2' || fail "$what: segment $SHMID: $(ipcs -m -i "$SHMID")"
	# the memfd's fd and its mappings (in both tasks) are one inode
	ino=$(stat -L -c %i /proc/"$W"/fd/20)
	for p in "$W" "$CHILD"; do
		awk -v i="$ino" '$5 == i && /memfd:ckpt-shm-test/ { f = 1 } END { exit !f }' \
			/proc/"$p"/maps || fail "$what: pid $p does not map the memfd of fd 20 (inode $ino)"
	done
}

# A shared mapped file changed since the dump: refused naming it, the
# images untouched; back to its content (new mtime) it is accepted.
flip()
{
	"$PYTHON" - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))
PY
}
image_sums "$T/img" >"$T/sums"
cp -p "$D/disk.bin" "$T/disk.saved"
for f in "$D/disk.bin" "/dev/shm/ckpt-shm-test-$W"; do
	flip "$f" 4000
	ckptctl_run restore "$T/img" --json && fail "restore with $f changed succeeded"
	grep -q "shared mapped file $f changed since the dump" "$ERR" ||
		fail "the refusal does not name $f: $(cat "$ERR")"
	log "changed: $(head -n 1 "$ERR" | cut -c1-160)"
	assert_restore_left_nothing "$T/tree.before"
	flip "$f" 4000
done
# ... and a FIFO put at its path: refused at once, not waited on for a writer
mv "$D/disk.bin" "$D/disk.moved" && mkfifo "$D/disk.bin"
CKPTCTL_TIMEOUT=20 ckptctl_run restore "$T/img" --json
((RC == 1)) || fail "shared mapped file now a FIFO: restore exited $RC (124: it waited): $(cat "$ERR")"
grep -q "shared mapped file $D/disk.bin is no longer a regular file" "$ERR" ||
	fail "the FIFO's refusal is unclear: $(cat "$ERR")"
log "FIFO: $(head -n 1 "$ERR" | cut -c1-160)"
assert_restore_left_nothing "$T/tree.before"
rm "$D/disk.bin" && mv "$D/disk.moved" "$D/disk.bin"
for step in shmem-create memfd-verify; do
	CKPT_FAULT=$step ckptctl_run restore "$T/img" --json && fail "$step: the restore succeeded"
	grep -q -- "$step" "$ERR" || fail "$step: the error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
done
image_sums "$T/img" | diff -u "$T/sums" - || fail "the refused restores changed the images"

ckpt_restore "$T/img"
check_restored "restore"
kill_tree "$W"
untrack "$W"

# As after a reboot: the segment and the /dev/shm files are gone. (The file
# on disk holds what the restored tree wrote since: put back as dumped.)
ipcrm -m "$SHMID" || fail "ipcrm -m $SHMID"
rm -f "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"
cp -p "$T/disk.saved" "$D/disk.bin"
# A restore that fails after making them again (stage memory comes after
# stage files) removes what it made: the machine is left as it was.
CKPT_FAULT=restore-memory ckptctl_run restore "$T/img" --json && fail "a restore with a forced failure succeeded"
assert_restore_left_nothing "$T/tree.before"
ipcs -m | awk -v id="$SHMID" '$2 == id { found = 1 } END { exit !found }' &&
	fail "the failed restore left System V segment $SHMID behind"
for f in "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"; do
	[[ ! -e $f ]] || fail "the failed restore left $f behind"
done
# A recreated file replaced by another (a file, a FIFO) between its naming
# and its reopening (CKPT_PAUSE at shmem-recreated; /dev/shm is writable by
# all): refused, and the rollback leaves the other file where it is.
for kind in file fifo; do
	paused_restore shmem-recreated "$T/img" --json
	swapped=''
	for f in "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"; do
		[[ -e $f ]] && swapped=$f
	done
	[[ -n $swapped ]] || fail "$kind: paused at shmem-recreated, but no file was recreated"
	rm -f "$swapped"
	if [[ $kind == file ]]; then echo intruder >"$swapped"; else mkfifo -m 666 "$swapped"; fi
	release_restore
	((RC != 0)) || fail "$kind: a restore whose recreated $swapped was replaced succeeded"
	grep -qF "recreated file $swapped was replaced by another" "$ERR" ||
		fail "$kind: the replaced file is not named: $(cat "$ERR")"
	log "$kind put at a recreated file: $(grep -m 1 -F 'was replaced by another' "$ERR" | cut -c1-200)"
	assert_restore_left_nothing "$T/tree.before"
	if [[ $kind == file ]]; then
		[[ $(cat "$swapped" 2>/dev/null) == intruder ]] || fail "the rollback removed the file put at $swapped"
	else
		[[ -p $swapped ]] || fail "the rollback removed the FIFO put at $swapped"
	fi
	rm -f "$swapped"
	for f in "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"; do
		[[ ! -e $f ]] || fail "$kind: the failed restore left $f behind"
	done
	ipcs -m | awk -v id="$SHMID" '$2 == id { found = 1 } END { exit !found }' &&
		fail "$kind: the failed restore left System V segment $SHMID behind"
done
lines=$(line_count "$D/log.txt")
ckpt_restore "$T/img"
check_restored "restore after the objects were removed"
ipcs -m -i "$SHMID" | grep -q 'bytes=10000' || fail "segment $SHMID not recreated with 10000 bytes"
[[ -e /dev/shm/ckpt-shm-test-$W ]] || fail "/dev/shm/ckpt-shm-test-$W was not recreated"
kill_tree "$W"
untrack "$W"

# Its id taken by another segment: refused, naming the id, nothing left.
# (The /dev/shm files changed since they were recreated: removed too, else
# the restore would refuse them first.)
ipcrm -m "$SHMID" || fail "ipcrm -m $SHMID"
rm -f "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"
cp -p "$T/disk.saved" "$D/disk.bin"
echo "$SHMID" >/proc/sys/kernel/shm_next_id
OTHER_ID=$(ipcmk -M 4096 | awk '{ print $NF }')
[[ $OTHER_ID == "$SHMID" ]] || fail "could not make another segment with id $SHMID (got $OTHER_ID)"
ckptctl_run restore "$T/img" --json && fail "a restore whose shmid is taken succeeded"
log "taken shmid: $(head -n 1 "$ERR" | cut -c1-200)"
grep -q "System V shared memory id $SHMID is taken" "$ERR" || fail "the error does not name shmid $SHMID: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree.before"
ipcrm -m "$OTHER_ID" && OTHER_ID=''

# Forged objects and areas (tests/e2e/imgforge.py, checksums fixed): every
# restore ends with exit 0 or 1, never a crash, and leaves no process.
rm -f "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"
ipcs -m | awk 'NR > 3 && $2 ~ /^[0-9]+$/ { print $2 }' | sort >"$T/segs.before"
refused=0 restored=0
for seed in $(seq 1 "${CKPT_FORGE_SEEDS:-4}"); do
	for f in files.img "mm-$W.img" "mm-$CHILD.img"; do
		rm -rf "$T/bad"
		cp -a "$T/img" "$T/bad"
		what=$("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" mutate "$T/bad" "$f" "$seed") ||
			fail "imgforge failed on $f"
		cp -p "$T/disk.saved" "$D/disk.bin"
		rm -f "/dev/shm/ckpt-shm-test-$W" "/dev/shm/sem.ckpt-sem-test-$W"
		CKPTCTL_TIMEOUT=30 ckptctl_run restore "$T/bad" --json
		case $RC in
		0)
			restored=$((restored + 1))
			kill_tree "$(json_get "$OUT" root_pid)"
			;;
		1) refused=$((refused + 1)) ;;
		*) fail "$what: ckptctl restore exited $RC (crash or hang): $(cat "$ERR")" ;;
		esac
		grep -qiE 'killed by signal|sanitizer|segmentation' "$ERR" &&
			fail "$what: the restorer crashed: $(cat "$ERR")"
		# shellcheck disable=SC2046
		poll_for 5 gone $(awk '{print $1}' "$T/tree.before") || fail "$what: a pid of the tree is still in use"
		poll_for 3 no_stray_restorer || fail "$what: a ckpt-restore is still running"
	done
done
log "forged: $refused refused, $restored harmless and restored"
# segments the forged restores made (the saved id, or a forged one)
for id in $(ipcs -m | awk 'NR > 3 && $2 ~ /^[0-9]+$/ { print $2 }' | sort | comm -13 "$T/segs.before" -); do
	ipcs -m -i "$id" | grep -q 'nattch=0' && ipcrm -m "$id"
done
pass
