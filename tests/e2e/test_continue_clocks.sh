#!/bin/bash
# SPDX-License-Identifier: MIT
# restore --continue-clocks: clocklog logs CLOCK_MONOTONIC, CLOCK_BOOTTIME
# and CLOCK_REALTIME every 100 ms and holds a relative and an absolute
# timerfd, a POSIX timer and an itimer of N s on CLOCK_MONOTONIC (re-armed
# when they fire). Dumped, kept 5 s, restored with --continue-clocks: the
# largest step of CLOCK_MONOTONIC and CLOCK_BOOTTIME it sees stays under 2 s
# (CLOCK_REALTIME jumps by the downtime), and every timer fires N s after it
# was armed on the program's clock (not 5 s early). A second cycle of the
# restored job (already in a time namespace: the offsets add up) does the
# same, through ckptd. A plain restore after that behaves as before: the
# clocks jump to the machine's. Last, --continue-clocks with --new-pidns.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

N=6
LOG=$T/clocklog.log
diag_add "$LOG"

# max_step FIELD FROM_LINE: the largest step of a tick column (2 mono, 3
# boot, 4 real) in the log from line FROM_LINE on.
max_step()
{
	awk -v f="$1" -v from="$2" 'NR >= from && $1 == "tick" {
		if (have) { d = $f - prev; if (d > m) m = d; if (d < -m2) m2 = -d }
		prev = $f; have = 1 }
		END { if (m2 > 0) printf "backwards %.3f\n", m2; else printf "%.3f\n", m }' "$LOG"
}
# fired_count: timer firings logged so far
fired_count() { grep -c '^fired' "$LOG"; }
# check_fired FROM_LINE: every firing from FROM_LINE on came N s (±1 s) after arming
check_fired()
{
	awk -v n="$N" -v from="$1" 'NR >= from && $1 == "fired" {
		d = $6 - $4; k++
		if (d < n - 1 || d > n + 1) { printf "%s fired %.3f s after it was armed (want %d)\n", $2, d, n; bad = 1 } }
		END { if (!k) { print "no timer fired"; bad = 1 } exit bad }' "$LOG"
}

cycle()
{
	local what=$1 img=$2 from gap
	shift 2
	# from the last tick before the dump on: its step to the next one counts
	from=$(line_count "$LOG")
	ckpt_dump "$PID" "$img"
	assert_tree_gone "$PID"
	sleep 5
	ckpt_restore "$img" "$@"
	PID=$RESTORED_PID
	# every timer fires again after the restore
	local fired
	fired=$(fired_count)
	wait_for 20 "4 timers firing after restore ($what)" eval "(( \$(fired_count) >= fired + 4 ))"
	wait_lines "$LOG" $(($(line_count "$LOG") + 3))
	MONO=$(max_step 2 "$from")
	BOOT=$(max_step 3 "$from")
	REAL=$(max_step 4 "$from")
	log "$what: largest steps: monotonic $MONO s, boottime $BOOT s, realtime $REAL s"
	FROM=$from
}

start_workload PID "$T/ready" -- "$WL/clocklog" "$LOG" "$T/ready" "$N"
wait_lines "$LOG" 10

cycle "cycle 1" "$T/img1" --continue-clocks
awk -v m="$MONO" -v b="$BOOT" 'BEGIN { exit !(m + 0 < 2 && b + 0 < 2 && m !~ /back/ && b !~ /back/) }' ||
	fail "cycle 1: the clocks stepped by monotonic $MONO s, boottime $BOOT s (want < 2 s)"
awk -v r="$REAL" 'BEGIN { exit !(r + 0 >= 5) }' || fail "cycle 1: CLOCK_REALTIME did not jump by the downtime ($REAL s)"
msg=$(check_fired "$FROM") || fail "cycle 1: $msg"
log "cycle 1: every timer fired $N s after arming on the program's clock"
[[ $(readlink "/proc/$PID/ns/time") != "$(readlink /proc/self/ns/time)" ]] || fail "the restored job is not in a time namespace of its own"

# the second cycle through ckptd (RestoreRequest.continue_clocks)
start_ckptd
cycle "cycle 2" "$T/img2" --continue-clocks
awk -v m="$MONO" -v b="$BOOT" 'BEGIN { exit !(m + 0 < 2 && b + 0 < 2 && m !~ /back/ && b !~ /back/) }' ||
	fail "cycle 2 (already in a time namespace): the clocks stepped by monotonic $MONO s, boottime $BOOT s"
msg=$(check_fired "$FROM") || fail "cycle 2: $msg"
log "cycle 2: the clocks went on again and every timer fired $N s after arming"

# Without the option: as before, the job gets the machine's clocks again
# (they run 10 s ahead of the job's by now).
cycle "plain" "$T/img3"
awk -v m="$MONO" 'BEGIN { exit !(m + 0 >= 5) }' || fail "plain restore: CLOCK_MONOTONIC did not jump ($MONO s)"
[[ $(readlink "/proc/$PID/ns/time") == "$(readlink /proc/self/ns/time)" ]] || fail "a plain restore put the job in a time namespace"

# Both namespaces at once (what a preserved job whose pids are taken gets).
cycle "with --new-pidns" "$T/img4" --continue-clocks --new-pidns
awk -v m="$MONO" -v b="$BOOT" 'BEGIN { exit !(m + 0 < 2 && b + 0 < 2 && m !~ /back/ && b !~ /back/) }' ||
	fail "with --new-pidns: the clocks stepped by monotonic $MONO s, boottime $BOOT s"
msg=$(check_fired "$FROM") || fail "with --new-pidns: $msg"
[[ $(readlink "/proc/$PID/ns/pid") != "$(readlink /proc/self/ns/pid)" ]] || fail "with --new-pidns: the job is not in a pid namespace of its own"
log "with --new-pidns too: the clocks went on and every timer fired $N s after arming"
pass
