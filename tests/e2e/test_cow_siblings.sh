#!/bin/bash
# SPDX-License-Identifier: MIT
# Copy-on-write pages shared between siblings only (docs/cow.md): a parent
# that rewrites its data while it forks (a garbage collector touching its
# objects) leaves its workers sharing pages with each other that it no
# longer has. prefork "gc": 16 workers and 64 MiB; the second quarter is
# shared by workers 0-7 (the first data) and by workers 8-15 (the parent's
# first rewrite), the third and fourth quarters by all 16; the parent has
# its own copy of the second and third, and unmapped the fourth. After restore: the same pids, every process's checksums of its
# own view still match, the PSS summed over the tree within 5% of before
# (each worker with its own copy: about 5 times more), the pages images
# hold each shared page once; a worker writing pages it shares with its
# siblings changes no one else's view. The same through a --leave-running
# dump and an incremental one (the shared pages then come from the parent
# checkpoint), and with the sharing not handed down
# (CKPT_FAULT=cow-sibling-copy: each copied from the sibling's saved pages,
# same content). A Python multiprocessing pool whose parent reads its data
# after forking comes back with the same PSS and works. Forged sibling
# links are refused.
# several dumps and restores of 18 processes and 64 MiB
: "${CKPT_E2E_TIMEOUT:=240}"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prefork_lib.sh"

N=16
MIB=64
LOG=$T/prefork.log
FORGE() { "$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" "$@"; }
diag_add "$LOG"

poll_ok_after() { tail -n "+$(($1 + 1))" "$PYLOG" | grep -q "^ok "; }
pages_mib() { du -sk "$1"/pages-*.img | awk '{s += $1} END {print int(s / 1024)}'; }

# restored LINE WHAT: the tree is back as dumped, each process checked its
# memory after line LINE of the log
restored()
{
	local lines=$1
	[[ $RESTORED_PID == "$PF" ]] || fail "$2: restored root pid $RESTORED_PID, dumped $PF"
	assert_same_tree "$T/tree.before" "$PF"
	wait_for 30 "every process to check its memory ($2)" all_ok_after "$lines"
	no_corrupt && return 0
	fail "memory differs ($2)"
}

# pss_close WHAT: the tree's PSS within 5% of before the first dump
pss_close() { pss_near "$1" "$(tree_pss "$PF")" "$pss_before"; }

start_workload PF "$T/prefork.ready" -- "$WL/prefork" "$N" "$MIB" "$LOG" "$T/prefork.ready" gc
mapfile -t pids < <(tree_pids "$PF")
((${#pids[@]} == N + 2)) || fail "expected $((N + 2)) processes, found ${#pids[@]}"
lines=$(line_count "$LOG")
wait_for 30 "every process to check its memory" all_ok_after "$lines"
no_corrupt || fail "memory check failed before the dump"
tree_snapshot "$PF" >"$T/tree.before"
pss_before=$(tree_pss "$PF")
log "before the dump: ${#pids[@]} processes, PSS $((pss_before / 1024)) MiB"

# the data once: the first data, two rewrites of a quarter each, one of
# another quarter, the workers' own changes and buffers (~117 MiB; each
# worker with its own copy of the sibling-shared half: ~590 MiB)
ckpt_dump "$PF" "$T/img"
assert_tree_gone "$PF"
mib=$(pages_mib "$T/img")
log "pages images: $mib MiB"
((mib < 5 * MIB / 2)) || fail "pages images hold $mib MiB: pages shared between siblings were saved more than once"
w0=$(awk '$1 == "worker" && $2 == 0 {print $4}' "$LOG" | head -n 1)
w1=$(awk '$1 == "worker" && $2 == 1 {print $4}' "$LOG" | head -n 1)
[[ -n $w0 && -n $w1 ]] || fail "workers 0 and 1 did not log their pids"
[[ -n $(FORGE find "$T/img" "pagemap-$w1.img" 5 "$w0") ]] || fail "worker 1 has no pages recorded as worker 0's"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
restored "$lines" "restore"
pss_close "after restore"

# The last worker shares the second quarter with workers 8-14 only and the
# third with all: it writes both (and the first pages, shared with all and
# the parent). Then worker 0, the first of those sharing the second quarter.
last=$(awk -v i=$((N - 1)) '$1 == "worker" && $2 == i {print $4}' "$LOG" | head -n 1)
[[ -n $last ]] || fail "worker $((N - 1)) did not log its pid"
write_shared "$last" "pages shared with its siblings"
write_shared "$w0" "pages shared with its siblings"
kill_tree "$PF"
assert_tree_gone "$PF"

# Incremental: a pre-dump, then the final dump with it as its parent. The
# pages did not change: the sibling's pages the parent holds while forking
# come from the pre-dump's images.
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
restored "$lines" "restore before the pre-dump"
# (and a --leave-running dump first: the tree runs on, its images restore
# the sharing as well)
lines=$(line_count "$LOG")
ckpt_dump "$PF" "$T/lr" --leave-running
assert_tree_running "$PF"
wait_for 30 "every process to check its memory after the --leave-running dump" all_ok_after "$lines"
no_corrupt || fail "memory changed in the tree left running"
ckpt_dump "$PF" "$T/pre" --pre-dump
assert_tree_running "$PF"
ckpt_dump "$PF" "$T/incr" --parent "$T/pre"
assert_tree_gone "$PF"
mib=$(pages_mib "$T/incr")
log "incremental dump: $mib MiB of pages in its own images"
((mib < MIB / 4)) || fail "the incremental dump saved $mib MiB although nothing changed"
lines=$(line_count "$LOG")
ckpt_restore "$T/incr"
restored "$lines" "restore of the incremental dump"
pss_close "after restore of the incremental dump"
kill_tree "$PF"
assert_tree_gone "$PF"

lines=$(line_count "$LOG")
ckpt_restore "$T/lr"
restored "$lines" "restore of the --leave-running dump"
pss_close "after restore of the --leave-running dump"
kill_tree "$PF"
assert_tree_gone "$PF"

# Not handed down (as when the restore forks the workers in another order
# than they were forked in): each worker's copy is read from the sibling's
# saved pages. The same memory, one copy per worker.
lines=$(line_count "$LOG")
CKPT_FAULT=cow-sibling-copy ckpt_restore "$T/img"
restored "$lines" "restore with copies"
pss=$(tree_pss "$PF")
log "restored with copies: PSS $((pss / 1024)) MiB"
((pss > pss_before * 2)) || fail "cow-sibling-copy: PSS $pss kB, the pages were shared all the same"
kill_tree "$PF"
assert_tree_gone "$PF"

# A real program: a Python multiprocessing pool whose parent reads its
# 300,000 objects after forking 8 workers (their reference counts are
# written: the parent's heap becomes its own, the workers share the old
# one among themselves). The pool works after restore, the PSS is as before
# (each worker with its own copy: about 4 times more).
PYLOG=$T/pygc.log
diag_add "$PYLOG"
start_workload PY "$T/pygc.ready" -- "$PYTHON" "$WLSRC/pygc.py" 300000 8 "$PYLOG" "$T/pygc.ready"
wait_grep "$PYLOG" "^ok 2 " 30
pss_py=$(tree_pss "$PY")
tree_snapshot "$PY" >"$T/py.before"
log "python pool: $(($(tree_pids "$PY" | wc -l) - 1)) workers, PSS $((pss_py / 1024)) MiB"
ckpt_dump "$PY" "$T/py"
assert_tree_gone "$PY"
lines=$(line_count "$PYLOG")
ckpt_restore "$T/py"
assert_same_tree "$T/py.before" "$PY"
wait_for 30 "the pool to answer after restore" poll_ok_after "$lines"
! grep -n BAD "$PYLOG" || fail "the pool or the parent's data differ after restore"
pss_near "python pool restored" "$(tree_pss "$PY")" "$pss_py"
kill_tree "$PY"
assert_tree_gone "$PY"

# Forged: a worker's pages from its own worker (not a child of the parent),
# then from the parent itself.
k=$(FORGE find "$T/img" "pagemap-$w1.img" 5 "$w0" | head -n 1)
grand=$(awk '$1 == "worker" && $2 == 100 {print $4}' "$LOG" | head -n 1)
for bad in "$grand" "$PF"; do
	rm -rf "$T/forged"
	cp -a "$T/img" "$T/forged"
	FORGE set "$T/forged" "pagemap-$w1.img" "$k" 5 "$bad"
	ckptctl_run restore "$T/forged" && fail "pages inherited from pid $bad as a sibling were restored"
	grep -q "inherited from a sibling, pid $bad, which is not another child of pid $PF" "$ERR" ||
		{ cat "$ERR"; fail "forged sibling $bad: wrong error"; }
	assert_gone "$PF"
	log "refused: $(tail -n 1 "$ERR")"
done
pass
