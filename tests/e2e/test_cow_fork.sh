#!/bin/bash
# SPDX-License-Identifier: MIT
# Copy-on-write sharing between a parent and the children it forked
# (docs/cow.md): a pre-forked server of 16 workers sharing 64 MiB of
# pseudo-random data (some workers rewrote, dropped or sparsely wrote part
# of it, each has private memory; one has a worker of its own that shares
# both) comes back with the same pids and the
# same total memory: the PSS summed over the tree (smaps_rollup) within 5%
# of what it was before the dump (without sharing it grows ~16 times); the
# pages images hold the shared data once. Every process keeps checking its
# own view of the data; a worker that writes shared pages after the restore
# does not change the parent's view nor the others', and neither does the
# parent writing them. Images that claim inherited pages the parent cannot
# hand down are refused. The same through a --leave-running dump. A
# restorer whose own mappings are in the way runs itself again.
# several dumps and restores of 18 processes and 64 MiB: more than the default 150 s
# on a loaded machine (ctest gives 300)
: "${CKPT_E2E_TIMEOUT:=240}"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prefork_lib.sh"

N=16
MIB=64
LOG=$T/prefork.log
FORGE() { "$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" "$@"; }
diag_add "$LOG"

# locked_private_kb PID: kB of PID's mlocked areas that are its own, not shared.
locked_private_kb()
{
	awk '/^Private_Dirty:/ {pd = $2} /^VmFlags:/ && / lo/ {sum += pd} END {print sum + 0}' "/proc/$1/smaps"
}

start_workload PF "$T/prefork.ready" -- "$WL/prefork" "$N" "$MIB" "$LOG" "$T/prefork.ready"
mapfile -t pids < <(tree_pids "$PF")
((${#pids[@]} == N + 2)) || fail "expected $((N + 2)) processes, found ${#pids[@]}"
lines=$(line_count "$LOG")
wait_for 30 "every process to check its memory" all_ok_after "$lines"
no_corrupt || fail "memory check failed before the dump"
tree_snapshot "$PF" >"$T/tree.before"
pss_before=$(tree_pss "$PF")
log "before the dump: ${#pids[@]} processes, PSS $((pss_before / 1024)) MiB, $(locked_private_kb "$PF") kB of the parent's locked MiB its own"

ckpt_dump "$PF" "$T/img"
assert_tree_gone "$PF"
pages_kb=$(du -sk "$T"/img/pages-*.img | awk '{s += $1} END {print s}')
log "pages images: $((pages_kb / 1024)) MiB"
((pages_kb < (MIB + MIB / 2) * 1024)) ||
	fail "pages images hold $((pages_kb / 1024)) MiB: the shared $MIB MiB were saved more than once"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$PF" ]] || fail "restored root pid $RESTORED_PID, dumped $PF"
assert_same_tree "$T/tree.before" "$PF"
assert_tree_running "$PF"
wait_for 30 "every process to check its memory after restore" all_ok_after "$lines"
no_corrupt || fail "memory differs after restore"
pss_near "after restore" "$(tree_pss "$PF")" "$pss_before"
# the parent's locked MiB is locked and still shared (locked after the fork,
# it would be the parent's own copy)
locked=$(locked_private_kb "$PF")
((locked <= 64)) || fail "$locked kB of the parent's locked memory are its own after restore, not shared"
grep -q "^VmFlags:.* lo" "/proc/$PF/smaps" || fail "the parent's locked area is not locked after restore"

# Worker 1 (it rewrote pages of its own, and has a worker of its own)
# writes pages still shared with everyone; then the parent does. Each sees
# its own write, nobody else does.
child=$(awk '$1 == "worker" && $2 == 1 {print $4}' "$LOG" | head -n 1)
[[ -n $child ]] || fail "worker 1 did not log its pid"
write_shared "$child" "shared pages"
write_shared "$PF" "shared pages"

# Again through --leave-running (pages moved into pipes while frozen), with
# the pages found from pagemap words as on kernels without PAGEMAP_SCAN: the
# tree runs on, and the images it leaves restore the sharing as well.
lines=$(line_count "$LOG")
CKPT_FAULT=pagemap-scan ckpt_dump "$PF" "$T/img-lr" --leave-running
assert_tree_running "$PF"
wait_for 30 "every process to check its memory after the --leave-running dump" all_ok_after "$lines"
no_corrupt || fail "memory changed in the tree left running"
pss_lr=$(tree_pss "$PF")
kill_tree "$PF"
assert_tree_gone "$PF"
lines=$(line_count "$LOG")
ckpt_restore "$T/img-lr"
assert_same_tree "$T/tree.before" "$PF"
wait_for 30 "every process to check its memory after the second restore" all_ok_after "$lines"
no_corrupt || fail "memory differs after the restore of the --leave-running images"
log "(tree before the --leave-running dump: PSS $((pss_lr / 1024)) MiB)"
pss_near "--leave-running images restored, against before the first dump" "$(tree_pss "$PF")" "$pss_before"
kill_tree "$PF"
assert_tree_gone "$PF"

# The restorer's own mappings in the way of the shared memory (both layouts
# are random): it runs itself again, which places them elsewhere; refused,
# with nothing created, if they stay in the way.
lines=$(line_count "$LOG")
CKPT_FAULT=cow-collision-once ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$PF"
wait_for 30 "every process to check its memory after a restore run twice" all_ok_after "$lines"
no_corrupt || fail "memory differs after a restore run twice"
kill_tree "$PF"
assert_tree_gone "$PF"
CKPT_FAULT=cow-collision ckptctl_run restore "$T/img" && fail "restored although the shared memory could never be reserved"
grep -q "shared copy-on-write with its parent or children cannot be reserved.*(after 4 attempts)" "$ERR" ||
	{ cat "$ERR"; fail "collision: wrong error"; }
assert_gone "$PF"
log "refused: $(tail -n 1 "$ERR")"

# Forged images: inherited pages in the root (it has no parent to fork from).
cp -a "$T/img" "$T/forged"
k=$(FORGE find "$T/forged" "pagemap-$PF.img" 2 1 | head -n 1) # an entry of one page
[[ -n $k ]] || k=0
FORGE set "$T/forged" "pagemap-$PF.img" "$k" 3 1
ckptctl_run restore "$T/forged" && fail "a root with inherited pages was restored"
grep -q "inherited from a parent, but pid $PF is the root" "$ERR" || { cat "$ERR"; fail "forged root: wrong error"; }
assert_gone "$PF"
log "refused: $(tail -n 1 "$ERR")"

# The parent's shared area made another kind of mapping (MAP_NORESERVE):
# the workers' inherited pages could not be a fork of it.
cp -a "$T/img" "$T/forged2"
for ((k = 0; ; k++)); do
	start=$(FORGE get "$T/forged2" "mm-$PF.img" 0 "14@$k.1") || fail "no area of $((MIB / 2)) MiB or more in mm-$PF.img"
	end=$(FORGE get "$T/forged2" "mm-$PF.img" 0 "14@$k.2")
	((end - start >= (MIB / 2) << 20)) && break # (its first MiB is locked: an area of its own)
done
flags=$(FORGE get "$T/forged2" "mm-$PF.img" 0 "14@$k.4")
FORGE set "$T/forged2" "mm-$PF.img" 0 "14@$k.4" $((flags | 0x4000))
ckptctl_run restore "$T/forged2" && fail "workers inheriting pages from another kind of area were restored"
grep -qE "inherited from pid $PF, but mm-[0-9]+.img and mm-$PF.img do not have them in the same kind of private area" "$ERR" ||
	{ cat "$ERR"; fail "forged parent area: wrong error"; }
assert_gone "$PF"
log "refused: $(tail -n 1 "$ERR")"
pass
