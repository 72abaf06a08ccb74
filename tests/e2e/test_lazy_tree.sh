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
pss_after=$(tree_pss "$PF")
log "PSS $((pss_after / 1024)) MiB after, $((pss_before / 1024)) MiB before"
diff=$((pss_after - pss_before))
((diff < 0)) && diff=$((-diff))
((diff * 100 <= pss_before * 10)) || fail "PSS of the tree is $pss_after kB after restore --lazy, $pss_before kB before"
child=$(awk '$1 == "worker" && $2 == 1 {print $4}' "$LOG" | head -n 1)
[[ -n $child ]] || fail "worker 1 did not log its pid"
lines=$(line_count "$LOG")
kill -USR1 "$child"
wait_grep "$LOG" "^wrote $child 1\$" 10
wait_for 30 "every process to check its memory after the write" all_ok_after "$(line_count "$LOG")"
grep -n CORRUPT "$LOG" && fail "a write to a shared page showed in another process"
assert_tree_running "$PF"
log "tree of $(tree_pids "$PF" | wc -l) processes: memory right, shared pages still shared"
pass
