#!/bin/bash
# SPDX-License-Identifier: MIT
# restore --lazy of a tree: a pre-forked server (tests/workloads/prefork.c:
# a parent and 9 workers sharing its data copy-on-write, each with its own
# buffer and its own changes). The shared areas are filled eagerly (kept
# copy-on-write, docs/cow.md), each process's own memory lazily, every
# process through its own userfaultfd; every process's checks of its own
# view pass after the pager is done, the PSS of the tree stays about what
# it was (the shared pages stay shared), and a write by one to a page
# shared with all still changes no one else's view.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prefork_lib.sh"

N=8
MIB=32
LOG=$T/prefork.log
diag_add "$LOG"

start_workload PF "$T/prefork.ready" -- "$WL/prefork" "$N" "$MIB" "$LOG" "$T/prefork.ready"
lines=$(line_count "$LOG")
wait_for 30 "every process to check its memory" all_ok_after "$lines"
tree_snapshot "$PF" >"$T/tree.before"
pss_before=$(tree_pss "$PF")
ckpt_dump "$PF" "$T/img"
assert_tree_gone "$PF"

lines=$(line_count "$LOG")
ckpt_restore "$T/img" --lazy
pager=$(json_get "$OUT" pager_pid) || fail "no pager_pid in $(cat "$OUT")"
assert_same_tree "$T/tree.before" "$PF"
GONE_TIMEOUT=30 assert_gone "$pager"
wait_for 30 "every process to check its memory after restore --lazy" all_ok_after "$lines"
grep -n CORRUPT "$LOG" && fail "memory differs after restore --lazy"
pss_near "after restore --lazy" "$(tree_pss "$PF")" "$pss_before" 10
child=$(awk '$1 == "worker" && $2 == 1 {print $4}' "$LOG" | head -n 1)
[[ -n $child ]] || fail "worker 1 did not log its pid"
write_shared "$child" "a page shared with all"
assert_tree_running "$PF"
log "tree of $(tree_pids "$PF" | wc -l) processes: memory right, shared pages still shared"
pass
