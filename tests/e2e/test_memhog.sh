#!/bin/bash
# SPDX-License-Identifier: MIT
# 256 MiB of pseudo-random anonymous memory survives dump and restore:
# same pid, every word of the area identical (the workload regenerates the
# stream and compares), iteration counter continuing by one; again with the
# pagemap read word by word (the path of kernels without PAGEMAP_SCAN).
. "$(dirname "$0")/lib.sh"

MIB=${MEMHOG_MIB:-256}
LOG=$T/memhog.log
diag_add "$LOG"

start_workload MH "$T/memhog.ready" -- "$WL/memhog" "$MIB" "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 3 20
tree_snapshot "$MH" >"$T/tree.before"

ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
last=$(check_memhog_log "$LOG") || fail "memhog log bad before restore: $last"
log "dumped at iteration $last ($lines lines); images: $(du -sh "$T/img" | cut -f1)"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$MH" ]] || fail "restored root pid $RESTORED_PID, dumped $MH"
assert_tree_running "$MH"
assert_same_tree "$T/tree.before" "$MH"

wait_lines "$LOG" $((lines + 5)) 30
grep -n CORRUPT "$LOG" && fail "memory corrupted after restore"
now=$(check_memhog_log "$LOG") || fail "memhog log after restore: $now"
first=$(sed -n "$((lines + 1))p" "$LOG" | awk '{print $2}')
[[ $first == $((last + 1)) ]] || fail "first iteration after restore is $first, expected $((last + 1))"
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$MH/status")
((rss >= MIB * 1024)) || fail "restored RSS ${rss} kB is less than the ${MIB} MiB area"
assert_running "$MH"
log "memory verified $((now - last)) times after restore, iterations $first..$now, RSS $((rss / 1024)) MiB"

# Once more, with the pages found by reading pagemap words as on kernels
# without PAGEMAP_SCAN (CKPT_FAULT=pagemap-scan selects that path).
CKPT_FAULT=pagemap-scan ckpt_dump "$MH" "$T/img2"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
last=$(check_memhog_log "$LOG") || fail "memhog log bad before the second restore: $last"
ckpt_restore "$T/img2"
assert_tree_running "$MH"
wait_lines "$LOG" $((lines + 3)) 30
grep -n CORRUPT "$LOG" && fail "memory corrupted after the restore of a dump that read pagemap words"
now=$(check_memhog_log "$LOG") || fail "memhog log after the second restore: $now"
assert_running "$MH"
log "pagemap-word dump: verified again, iterations up to $now"
pass
