#!/bin/bash
# SPDX-License-Identifier: MIT
# Timers across dump and restore: the POSIX timers keep their ids, clocks,
# signals and notify targets (/proc/PID/timers unchanged), the periodic ones
# (timer_create every 200 ms, ITIMER_PROF) keep firing at about their rate,
# and an alarm(3) set 1 s before the dump fires about 2 s after the restore
# (its remaining time was kept, the time spent dumped does not count); 100
# more one-shot timers keep their remaining times, each its own (the dump
# reads them in batches of remote syscalls).
. "$(dirname "$0")/lib.sh"

LOG=$T/timers.log
diag_add "$LOG"
start_workload TM "$T/timers.ready" -- "$WL/timers" "$LOG" "$T/timers.ready"
wait_grep "$LOG" '^tick 5 ' 10
grep -qx 'timers 0 2' "$LOG" || fail "unexpected timer ids: $(grep '^timers' "$LOG")"
sleep 0.5 # the alarm has about 2 s left now
cat "/proc/$TM/timers" >"$T/timers.before"
tree_snapshot "$TM" >"$T/tree.before"
ckpt_dump "$TM" "$T/img"
assert_tree_gone "$TM"
grep -q '^alarm' "$LOG" && fail "the alarm fired before the dump: $(grep '^alarm' "$LOG")"
sleep 2 # the alarm would have fired by now without the dump
rt0=$(tail -n 1 "$LOG" | awk '{print $4}')
# from the start of the restore: ckpt_restore's own bookkeeping after the
# tree runs (a python3 for the JSON) takes up to a second on a busy machine
t0=$(now_us)
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$TM" ]] || fail "restored root pid $RESTORED_PID, dumped $TM"
assert_same_tree "$T/tree.before" "$TM"
diff -u "$T/timers.before" "/proc/$TM/timers" || fail "/proc/$TM/timers changed"

wait_grep "$LOG" '^alarm' 6
ms=$((($(now_us) - t0) / 1000))
log "alarm fired ${ms} ms after the restore began: $(grep '^alarm' "$LOG")"
# had the time spent dumped counted, it would fire during the restore itself
((ms >= 1000 && ms <= 6000)) || fail "alarm fired ${ms} ms after the restore began, expected about 2 s"

sleep 1
last=$(tail -n 1 "$LOG")
read -r _ tick _ rt _ prof _ alarms _ bad <<<"$last"
log "after restore: $last (rt was $rt0 at dump)"
((bad == 0)) || fail "a POSIX timer signal came with a wrong si_code or value, or the 100 extra timers' remaining times came back mixed up ($(grep -c 'extra BAD' "$LOG") 'extra BAD' lines): $last"
((alarms == 1)) || fail "alarm fired $alarms times: $last"
# about 3 s after the restore: 15 more timer_create signals, loose bounds
((rt - rt0 >= 7 && rt - rt0 <= 30)) || fail "POSIX timer fired $((rt - rt0)) times in ~3 s after restore"
prof0=$(grep -m1 "rt $rt0 " "$LOG" | awk '{print $6}')
sleep 1
prof1=$(tail -n 1 "$LOG" | awk '{print $6}')
((prof1 > prof)) || fail "ITIMER_PROF stopped: prof $prof then $prof1 (was ${prof0:-?} at dump)"
assert_running "$TM"
pass
