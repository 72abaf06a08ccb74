#!/bin/bash
# SPDX-License-Identifier: MIT
# A task's page data in parts (lib/image.h, docs/dump.md "Lanes"): a task
# with 64 MiB of pages or more is copied and written by one lane per CPU,
# each into a part of its pages image (pages-PID.img, pages-PID-1.img, ...),
# and every reader takes the parts as one run of data: an eager restore,
# a lazy one (the pager), an incremental dump whose pages are its parent's
# and whose parent is in parts, a final dump that writes the pages it copied
# before its freeze into parts reserved ahead, a tree whose children share pages with
# their parent copy-on-write. Every restore is checked by the program itself
# (memhog compares every word of its area; the pre-forked server's tree its
# own sums).
# Forged parts (checksums recomputed) are refused naming the part: one the
# first part says exists but the inventory does not list, one whose header
# says it is another part, one missing. A dump whose lanes run out of room
# fails naming the part, the program running on untouched, nothing left.
# Shared memory content (after a task's own pages, in its last part): a
# parent and child sharing memory every way (tests/workloads/shmem.c) keep
# seeing each other's writes after a restore from parts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prefork_lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"
parts_of() { find "$1" -maxdepth 1 -name "pages-$2-*.img" | wc -l; }

# memhog_restored DIR WHAT [ARGS]: restore memhog from DIR, wait for two
# more checks of its whole area, all good
memhog_restored()
{
	local dir=$1 what=$2 lines last now
	shift 2
	lines=$(line_count "$LOG")
	last=$(check_memhog_log "$LOG") || fail "$what: memhog log bad before restore: $last"
	ckpt_restore "$dir" "$@"
	[[ $RESTORED_PID == "$MH" ]] || fail "$what: restored root pid $RESTORED_PID, dumped $MH"
	wait_lines "$LOG" $((lines + 2)) 40
	grep -n CORRUPT "$LOG" && fail "$what: memory corrupted after restore"
	now=$(check_memhog_log "$LOG") || fail "$what: memhog log after restore: $now"
	assert_running "$MH"
	log "$what: memory verified, iterations $((last + 1))..$now"
}

# 1. By size: 256 MiB on this machine's CPUs, no option.
cpus=$(nproc)
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 256 "$LOG" "$T/memhog.ready" --interval 700
wait_lines "$LOG" 2 20
ckpt_dump "$MH" "$T/big" -v -v
n=$(parts_of "$T/big" "$MH")
if ((cpus >= 2)); then
	want=$((cpus > 4 ? 3 : cpus - 1))
	((n == want)) || fail "256 MiB on $cpus CPUs: $n parts besides pages-$MH.img, expected $want"
	grep -q "bytes of pages in $((want + 1)) parts" "$ERR" || fail "the dump did not say its parts: $(grep 'bytes of pages' "$ERR")"
else
	((n == 0)) || fail "one CPU: $n parts"
fi
assert_tree_gone "$MH"
memhog_restored "$T/big" "256 MiB in $((n + 1)) parts"

# 2. Parts for every task (CKPT_FAULT=pages-lanes: four lanes, whatever the
# size and the CPUs), read by the pager: a lazy restore. The pages found by
# page table walks in two halves at once (walk-split: as for 512 MiB or
# more), here and in the final dump of 4.
CKPT_FAULT=pages-lanes,walk-split ckpt_dump "$MH" "$T/lazy"
(($(parts_of "$T/lazy" "$MH") == 3)) || fail "pages-lanes: $(parts_of "$T/lazy" "$MH") parts, expected 3"
assert_tree_gone "$MH"
memhog_restored "$T/lazy" "lazy restore of 4 parts" --lazy
pager=$(json_get "$OUT" pager_pid) || fail "restore --lazy printed no pager_pid"
GONE_TIMEOUT=60 assert_gone "$pager"
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$MH/status")
((rss >= 256 * 1024)) || fail "after the pager, Rss is $((rss / 1024)) MiB"

# 3. An incremental chain: a pre-dump in parts (its pages copied while
# frozen, CKPT_FAULT=page-pipes: pages that wait in pipes take one lane),
# then a dump against it (memhog does not write its area after filling it:
# every page is the parent's), then one more; the restore reads the first
# one's parts.
CKPT_FAULT=pages-lanes,page-pipes ckpt_dump "$MH" "$T/pre" --pre-dump
(($(parts_of "$T/pre" "$MH") == 3)) || fail "the pre-dump has $(parts_of "$T/pre" "$MH") parts"
ckpt_dump "$MH" "$T/mid" --parent "$T/pre" --pre-dump --json
ckpt_dump "$MH" "$T/last" --parent "$T/mid" --json
unchanged=$(json_get "$OUT" pages_unchanged)
((unchanged >= 256 * 256)) || fail "the last dump left $unchanged pages to its parents, expected at least 65536"
assert_tree_gone "$MH"
memhog_restored "$T/last" "a chain of three, the first in parts"

# 4. A final dump's pages written in its freeze into parts given storage
# ahead (docs/incremental.md, "Storage before the freeze"): memhog
# --rewrite writes its whole 32 MiB after each check (every 1.5 s here),
# so the dump with --parent, right after a rewrite, copies those pages
# before its freeze and writes them from that copy as they are; one part
# per CPU.
kill_tree "$MH"
LOG=$T/rewrite.log
diag_add "$LOG"
start_workload MH "$T/rewrite.ready" -- "$WL/memhog" 32 "$LOG" "$T/rewrite.ready" --interval 1500 --rewrite
wait_lines "$LOG" 2 20
ckpt_dump "$MH" "$T/rw-pre" --pre-dump
wait_lines "$LOG" $(($(line_count "$LOG") + 1)) 20
sleep 0.3 # the rewrite after the check: done (32 MiB), the next 1.2 s away
CKPT_FAULT=walk-split ckpt_dump "$MH" "$T/rw-final" --parent "$T/rw-pre" -v -v
copied=$(sed -n 's/.* pages saved (\([0-9]*\) of them from the copy made before the freeze).*/\1/p' "$ERR")
((copied >= 4096)) || fail "the final dump took ${copied:-no} pages from its copy before the freeze: $(grep -i 'freeze' "$ERR")"
want=$((cpus < 2 ? 1 : cpus > 4 ? 4 : cpus))
grep -q 'of pages images reserved before the freeze' "$ERR" || fail "the final dump reserved no storage"
grep -q "bytes of pages in $want part" "$ERR" || fail "the final dump's pages: $(grep 'bytes of pages' "$ERR"), expected $want part(s)"
(($(parts_of "$T/rw-final" "$MH") == want - 1)) || fail "the final dump has $(parts_of "$T/rw-final" "$MH") parts besides pages-$MH.img, expected $((want - 1))"
assert_tree_gone "$MH"
# a generation of memory a check every 50 ms: any page saved from another
# generation than the one at the freeze is a CORRUPT line
lines=$(line_count "$LOG")
last=$(memhog_last_iter "$LOG")
ckpt_restore "$T/rw-final"
[[ $RESTORED_PID == "$MH" ]] || fail "reserved parts: restored root pid $RESTORED_PID, dumped $MH"
wait_lines "$LOG" $((lines + 3)) 40
grep -n CORRUPT "$LOG" && fail "reserved parts: the restored memory is not the memory at the freeze"
first=$(sed -n "$((lines + 1))p" "$LOG" | awk '{print $2}')
((first == last + 1)) || fail "reserved parts: check $first after the restore, $last before the dump"
log "a final dump written into $want reserved part(s): checks $first..$(memhog_last_iter "$LOG") ok"

# 5. A pre-forked server: 8 workers sharing 32 MiB copy-on-write with their
# parent; the shared pages are put in place from the parent's parts before
# the workers are forked, their own from theirs.
kill_tree "$MH"
LOG=$T/prefork.log
diag_add "$LOG"
start_workload PF "$T/prefork.ready" -- "$WL/prefork" 8 32 "$LOG" "$T/prefork.ready"
lines=$(line_count "$LOG")
wait_for 30 "every process to check its memory" all_ok_after "$lines"
tree_snapshot "$PF" >"$T/prefork.before"
CKPT_FAULT=pages-lanes ckpt_dump "$PF" "$T/cow"
assert_tree_gone "$PF"
lines=$(line_count "$LOG")
ckpt_restore "$T/cow"
assert_same_tree "$T/prefork.before" "$PF"
wait_for 30 "every process to check its memory after restore" all_ok_after "$lines"
no_corrupt || fail "pre-forked server: memory differs after restore from parts"
log "pre-forked server of $(tree_pids "$PF" | wc -l) restored from parts, memory verified"
kill_tree "$PF"

# 6. Forged parts, checksums recomputed: refused, naming the part.
start_workload SM "$T/small.ready" -- "$WL/memhog" 4 "$T/small.log" "$T/small.ready" --interval 700
wait_lines "$T/small.log" 2 20
tree_snapshot "$SM" >"$T/small.before"
CKPT_FAULT=pages-lanes ckpt_dump "$SM" "$T/small"
assert_tree_gone "$SM"
forge=("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py")
refuse()
{
	local what=$1 want=$2
	ckptctl_run restore "$T/forged" && fail "$what: the restore succeeded"
	grep -qF -- "$want" "$ERR" || fail "$what: '$want' not in the error: $(cat "$ERR")"
	assert_restore_left_nothing "$T/small.before"
	log "$what: refused: $(grep -F -- "$want" "$ERR" | head -n 1)"
}
# part 0 says 5 parts: pages-PID-4.img is not listed
rm -rf "$T/forged" && cp -a "$T/small" "$T/forged"
"${forge[@]}" poke "$T/forged" "pages-$SM.img" 12 $((4 << 16)) >/dev/null || fail "imgforge poke failed"
refuse "five parts said" "pages-$SM-4.img is missing (pages-$SM.img says its data has 5 parts"
# part 2 says it is part 1 (of 4)
rm -rf "$T/forged" && cp -a "$T/small" "$T/forged"
"${forge[@]}" poke "$T/forged" "pages-$SM-2.img" 12 $(((3 << 16) | 1)) >/dev/null || fail "imgforge poke failed"
refuse "a part named 2 saying 1" "pages-$SM-2.img: header says part 1, the name 2"
# a part removed
rm -rf "$T/forged" && cp -a "$T/small" "$T/forged"
rm "$T/forged/pages-$SM-3.img"
refuse "a part removed" "pages-$SM-3.img"
LOG=$T/small.log MH=$SM memhog_restored "$T/small" "the unforged images"

# 7. No room: 32 MiB in four lanes onto a file system of 20 MiB.
FS=$T/fs
mkdir -p "$FS" && mount -t tmpfs -o size=20m ckpt-e2e-parts "$FS" || fail "cannot mount a tmpfs on $FS"
at_exit umount -l "$FS"
start_workload NR "$T/noroom.ready" -- "$WL/memhog" 32 "$T/noroom.log" "$T/noroom.ready" --interval 300
diag_add "$T/noroom.log"
wait_lines "$T/noroom.log" 2 20
CKPT_FAULT=pages-lanes ckptctl_run dump "$NR" -D "$FS/img" && fail "a dump onto 20 MiB of room succeeded"
grep -qE "pages-$NR(-[0-9])?\.img.*(No space|space left)" "$ERR" || fail "the dump did not name the part and the lack of room: $(cat "$ERR")"
[[ -z $(ls -A "$FS") ]] || fail "the failed dump left $(ls -A "$FS") behind"
assert_running "$NR"
lines=$(line_count "$T/noroom.log")
wait_lines "$T/noroom.log" $((lines + 2)) 20
grep -n CORRUPT "$T/noroom.log" && fail "memory corrupted after the failed dump"
check_memhog_log "$T/noroom.log" >/dev/null || fail "memhog log bad after the failed dump"
log "no room: refused: $(grep -E "space" "$ERR" | head -n 1); memhog runs on, checked"
kill_tree "$NR"

# 8. Shared memory objects' content in the last part of their owner's image.
D=$T/shm
mkdir -p "$D"
diag_add "$D/log.txt"
start_workload SW "$D/ready" -- "$WL/shmem" "$D"
at_exit "ipcrm -m $(awk '$1 == "shmid" { print $2 }' "$D/areas") 2>/dev/null; rm -f /dev/shm/ckpt-shm-test-$SW /dev/shm/sem.ckpt-sem-test-$SW"
wait_lines "$D/log.txt" 5
CKPT_FAULT=pages-lanes ckpt_dump "$SW" "$T/shmimg"
(($(parts_of "$T/shmimg" "$SW") == 3)) || fail "shared memory: $(parts_of "$T/shmimg" "$SW") parts of the parent's pages"
ckptctl_run show "$T/shmimg" files.img || fail "ckptctl show files.img failed: $(cat "$ERR")"
grep -q '"pages_pid"' "$OUT" || fail "no object's content in a pages image: $(head -c 600 "$OUT")"
lines=$(line_count "$D/log.txt")
before=$(tail -n 1 "$D/log.txt")
ckpt_restore "$T/shmimg"
wait_lines "$D/log.txt" $((lines + 20)) 20
grep -n FAIL "$D/log.txt" && fail "shared memory: the workload found a difference after the restore from parts"
after=$(tail -n 1 "$D/log.txt")
read -ra c0 <<<"$(awk '{ print $4, $5, $6, $7, $8, $9 }' <<<"$before")"
read -ra c1 <<<"$(awk '{ print $4, $5, $6, $7, $8, $9 }' <<<"$after")"
for i in 0 1 2 3 4 5; do
	((c1[i] >= c0[i] + 5)) || fail "shared memory: counter $i stuck: '$before' -> '$after'"
done
log "shared memory restored from parts: $before -> $after"
kill_tree "$SW"
pass
