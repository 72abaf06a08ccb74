#!/bin/bash
# SPDX-License-Identifier: MIT
# restore --lazy, then the program forks, munmaps (and maps fresh memory
# there), mremaps and madvise(DONTNEED)s areas whose pages are still
# missing: each sees exactly what an eager restore gives (the pattern, or
# zeros where the program dropped the content), checked by the program
# (tests/workloads/lazyev.c). First with the pager's background copy off
# (CKPT_FAULT=pager-late-prefetch: for its first 5 s every page comes
# through a fault or an event), then with it on, racing the program; the
# pager exits both times. A pages image corrupted after the dump: the
# restore returns (its checksum is the pager's to check), then the pager
# kills the tree. A restore failing after the pager started leaves neither
# tasks nor pager.
. "$(dirname "$0")/lib.sh"

MIB=${LAZYEV_MIB:-16}

run_case()
{
	local name=$1 fault=$2 log=$T/$1.log
	diag_add "$log"
	rm -f "$T/$name.go"
	start_workload EV "$T/$name.ready" -- "$WL/lazyev" "$MIB" "$log" "$T/$name.ready" "$T/$name.go"
	wait_lines "$log" 1 20
	ckpt_dump "$EV" "$T/img.$name"
	assert_tree_gone "$EV"
	CKPT_FAULT=$fault ckpt_restore "$T/img.$name" --lazy
	local pager
	pager=$(json_get "$OUT" pager_pid) || fail "$name: no pager_pid in $(cat "$OUT")"
	touch "$T/$name.go"
	wait_grep "$log" '^done' 30
	grep -n BAD "$log" && fail "$name: the program saw wrong memory after restore --lazy"
	for step in fork munmap mremap dontneed untouched; do
		grep -q "^ok $step\$" "$log" || fail "$name: no 'ok $step' in the log"
	done
	GONE_TIMEOUT=30 assert_gone "$pager"
	assert_running "$EV"
	log "$name: fork, munmap, mremap, DONTNEED and untouched areas all exact; pager $pager exited"
	kill_tree "$EV"
	untrack "$EV"
}

run_case faults-first pager-late-prefetch
run_case with-prefetch ""

# The pages images' checksums are checked by the pager, after the tree runs
# (docs/lazy.md): a corrupted one kills the tree.
log=$T/corrupt.log
diag_add "$log"
start_workload EV "$T/corrupt.ready" -- "$WL/lazyev" "$MIB" "$log" "$T/corrupt.ready" "$T/corrupt.go"
wait_lines "$log" 1 20
ckpt_dump "$EV" "$T/img.corrupt"
assert_tree_gone "$EV"
pages=$T/img.corrupt/pages-$EV.img
size=$(stat -c %s "$pages")
printf '\xa5' | dd of="$pages" bs=1 seek=$((size / 2)) conv=notrunc status=none || fail "cannot corrupt $pages"
ckpt_restore "$T/img.corrupt" --lazy
GONE_TIMEOUT=20 assert_gone "$EV"
untrack "$EV"
wait_grep "$ERR" "pages-$EV.img: checksum mismatch" 10
log "a corrupted pages image found by the pager: the tree was killed"

# A restore --lazy failing after stage pager rolls back the pager too.
no_pager() { local p; for p in $(tree_pids "$REAPER_PID"); do proc_stat "$p" && [[ $S_COMM == ckpt-pager* ]] && return 1; done; return 0; }
log=$T/rollback.log
diag_add "$log"
start_workload EV "$T/rollback.ready" -- "$WL/lazyev" "$MIB" "$log" "$T/rollback.ready" "$T/rollback.go"
wait_lines "$log" 1 20
tree_snapshot "$EV" >"$T/rollback.tree"
ckpt_dump "$EV" "$T/img.rollback"
assert_tree_gone "$EV"
untrack "$EV"
CKPT_FAULT=restore-signals ckptctl_run restore "$T/img.rollback" --lazy && fail "restore with CKPT_FAULT=restore-signals succeeded"
assert_restore_left_nothing "$T/rollback.tree"
poll_for 5 no_pager || fail "a pager is left after the failed restore --lazy"
log "a failed restore --lazy left no task and no pager"
pass
