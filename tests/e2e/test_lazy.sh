#!/bin/bash
# SPDX-License-Identifier: MIT
# restore --lazy of 512 MiB of pseudo-random anonymous memory: ckptctl
# returns while most of the area is not in yet (the task's Rss right after
# the return is well below it), the pager (pager_pid of --json) brings the
# rest in and exits, and the program's own check of every word passes,
# iteration counter continuing by one. The program reading its memory while
# the pager's background copy is held back: far fewer faults than pages
# (each brings the pages after it). Then the same restore with the pager
# killed at once: the tree is killed with it (no task left, none read a
# zero page: the log has no CORRUPT line); a dump meanwhile is refused.
. "$(dirname "$0")/lib.sh"

MIB=${LAZY_MIB:-512}
LOG=$T/memhog.log
diag_add "$LOG"

rss_kib() { awk '/^Rss:/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps_rollup"; }

start_workload MH "$T/memhog.ready" -- "$WL/memhog" "$MIB" "$LOG" "$T/memhog.ready" --interval 1500
wait_lines "$LOG" 2 20
ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
last=$(check_memhog_log "$LOG") || fail "memhog log bad before restore: $last"

# ckptctl directly: ckpt_restore's JSON parsing takes longer than the pager
# needs for the whole area on this machine
TRACKED+=("$MH")
ckptctl_run restore "$T/img" --lazy --json
rss=$(rss_kib "$MH")
((RC == 0)) || { cat "$ERR"; fail "restore --lazy failed (exit $RC)"; }
RESTORED_PID=$(json_get "$OUT" root_pid) || fail "restore --lazy --json printed no root_pid"
pager=$(json_get "$OUT" pager_pid) || { cat "$OUT"; fail "restore --lazy --json printed no pager_pid"; }
log "right after the return: Rss $((rss / 1024)) MiB of $MIB MiB; pager pid $pager"
((rss < MIB * 1024 / 2)) || fail "Rss right after restore --lazy is $((rss / 1024)) MiB: the memory was not left to the pager"
[[ $RESTORED_PID == "$MH" ]] || fail "restored root pid $RESTORED_PID, dumped $MH"
[[ -e /proc/$pager ]] || log "(the pager was already done)"
# the pager is no task of the tree: not a child of any of its tasks
for p in $(tree_pids "$MH"); do
	[[ $p == "$pager" ]] && fail "the pager $pager is in the restored tree"
done
GONE_TIMEOUT=30 assert_gone "$pager"
rss=$(rss_kib "$MH")
((rss >= MIB * 1024)) || fail "after the pager exited, Rss is $((rss / 1024)) MiB, less than the $MIB MiB area"
wait_lines "$LOG" $((lines + 2)) 30
grep -n CORRUPT "$LOG" && fail "memory corrupted after restore --lazy"
now=$(check_memhog_log "$LOG") || fail "memhog log after restore --lazy: $now"
first=$(sed -n "$((lines + 1))p" "$LOG" | awk '{print $2}')
[[ $first == $((last + 1)) ]] || fail "first iteration after restore is $first, expected $((last + 1))"
assert_running "$MH"
log "lazy restore: memory verified, iterations $first..$now, Rss $((rss / 1024)) MiB"

# A program reading its memory in order while the background copy is held
# back (its check comes within 1.5 s, the copy after 5 s): a fault brings
# the pages after it too (FAULT_AROUND_PAGES), so far fewer faults than
# pages; the check passes.
ckpt_dump "$MH" "$T/img4"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
CKPT_FAULT=pager-late-prefetch ckptctl_run -v restore "$T/img4" --lazy --json ||
	{ cat "$ERR"; fail "restore --lazy (copy held back) failed (exit $RC)"; }
pager=$(json_get "$OUT" pager_pid) || { cat "$OUT"; fail "no pager_pid"; }
wait_lines "$LOG" $((lines + 1)) 30
GONE_TIMEOUT=30 assert_gone "$pager"
said=$(grep -o "done: .*" "$ERR") || { cat "$ERR"; fail "the pager did not say it was done"; }
faults=$(sed -n 's/.* copied, \([0-9]*\) faults.*/\1/p' <<<"$said")
pages=$((MIB * 256))
[[ -n $faults ]] || fail "no fault count in: $said"
((faults > 0 && faults * 8 < pages)) ||
	fail "the program read its $pages pages in order with $faults faults: a fault brought one page at a time"
grep -n CORRUPT "$LOG" && fail "memory corrupted after restore --lazy (copy held back)"
check_memhog_log "$LOG" >/dev/null || fail "memhog log after restore --lazy (copy held back) is bad"
log "read in order through faults: $faults faults for $pages pages ($said)"

# A killed pager kills the tree.
ckpt_dump "$MH" "$T/img2"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
# (its background copy held back for 5 s: the pager is surely still at work)
CKPT_FAULT=pager-late-prefetch ckpt_restore "$T/img2" --lazy
pager=$(json_get "$OUT" pager_pid) || fail "no pager_pid"
watcher=$(pgrep -P "$pager" -x ckpt-pager-w) || fail "the pager $pager has no watcher"
# a dump while pages are missing would save them as holes: refused, the
# tree left running
if ckptctl_run dump "$MH" -D "$T/img3"; then
	fail "a dump during the lazy phase succeeded"
fi
grep -q "userfaultfd in missing mode" "$ERR" || { cat "$ERR"; fail "the dump during the lazy phase failed for another reason"; }
assert_running "$MH"
log "a dump during the lazy phase is refused: $(head -n 1 "$ERR")"
# killed while the program is in the middle of its check (its pages coming
# in through faults): without the watcher it would go on reading zeros
rss_above() { (($(rss_kib "$MH") > $1)); }
poll_for 20 rss_above $((16 * 1024)) || fail "the program did not start reading its memory"
kill -KILL "$pager" 2>/dev/null || fail "the pager $pager was gone before it could be killed"
GONE_TIMEOUT=10 assert_gone "$MH" "$watcher"
untrack "$MH"
sleep 0.3
grep -n CORRUPT "$LOG" && fail "a task read wrong memory after its pager was killed"
log "killed pager: the tree was killed, $(($(line_count "$LOG") - lines)) lines after the restore, none CORRUPT"
pass
