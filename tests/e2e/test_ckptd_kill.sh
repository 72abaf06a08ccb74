#!/bin/bash
# SPDX-License-Identifier: MIT
# Kill anything, the client still tells the truth: memhog (512 MiB) dumped
# and restored through ckptd while ckptd or its worker is SIGKILLed at a
# point fixed by CKPT_PAUSE, and an in-process dump killed in the middle.
# Each outcome against the contract: exit 0 <=> a complete checkpoint (or a
# running restored tree); otherwise the program runs on untouched, no valid
# checkpoint and no image is left, no restored process exists; a dump.log
# named in an error exists; no DIR.tmp.* outlives the next dump.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

MIB=${KILL_MIB:-512}
LOG=$T/memhog.log
start_workload MH "$T/memhog.ready" -- "$WL/memhog" "$MIB" "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 3 30

# dump_bg DIR: ckptctl dump of memhog in the background ($DPID), output in $T/d.*
diag_add "$T/d.err" "$T/r.err"
dump_bg() { "$CKPTCTL" dump "$MH" -D "$1" >"$T/d.out" 2>"$T/d.err" & DPID=$!; }
memhog_untouched()
{
	local n
	assert_running "$MH"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$MH/status" || fail "memhog is still traced"
	n=$(line_count "$LOG")
	wait_lines "$LOG" $((n + 2)) 10
	# since the last restore (L0, set by restore_bg; the same checkpoint is
	# restored several times, each going on from the dumped iteration)
	{ head -n 1 "$LOG"; tail -n +$((${L0:-1} + 1)) "$LOG"; } >"$T/part.log"
	check_memhog_log "$T/part.log" 2 >/dev/null ||
		fail "memhog log: $(check_memhog_log "$T/part.log" 2)"
}
no_images() { [[ -z $(find "$1" -name '*.img' 2>/dev/null) ]] || fail "images left in $1: $(ls "$1")"; }
worker_of() { pgrep -P "$CKPTD_PID" | head -n 1; }

# --- 1: ckptd killed while the worker copies the memory -------------------------
CKPT_PAUSE=dump-memory:$T/go1 start_ckptd
dump_bg "$T/ck1"
wait_for 30 "the dump to pause in the memory step" test -e "$T/go1.paused"
kill -9 "$CKPTD_PID"
untrack "$CKPTD_PID"
touch "$T/go1"
wait "$DPID" && fail "ckptctl said the dump succeeded after ckptd was killed before the memory"
log "ckptd killed during the memory: $(tail -n 1 "$T/d.err")"
memhog_untouched
no_images "$T/ck1"
logs_named_exist "$T/d.err"

# --- 2: ckptd killed after the checkpoint is complete ----------------------------
CKPT_PAUSE=ckptd-dump-done:$T/go2 start_ckptd
dump_bg "$T/ck2"
wait_for 60 "the dump to pause when done" test -e "$T/go2.paused"
kill -9 "$CKPTD_PID"
untrack "$CKPTD_PID"
touch "$T/go2"
wait "$DPID" || fail "the checkpoint was complete but ckptctl failed: $(cat "$T/d.err")"
log "ckptd killed after the commit: $(tail -n 1 "$T/d.err")"
[[ -s $T/ck2/inventory.img ]] || fail "exit 0 without inventory.img"
assert_gone "$MH"
[[ $(stat -c %a "$T/ck2") == 700 ]] || fail "ckptctl made $T/ck2 $(stat -c %a "$T/ck2")"

# --- 3: ckptd killed after the restore, before it could answer ------------------
# Past ckpt-restore's commit point the tree runs whatever dies: the client
# reads the commit record ckpt-restore wrote into the client's own memfd
# before the tree ran (ckptd can no longer answer), so it says so.
# restored_runs: exit 0, memhog back at its pid and going on; then killed
# for the next restore of the same images.
restored_runs()
{
	local what=$1 n
	wait "$RPID" || fail "$what, the tree runs, but ckptctl failed: $(cat "$T/r.err")"
	log "$what: $(tail -n 1 "$T/r.err")"
	[[ $(json_get "$T/r.out" root_pid) == "$MH" ]] || fail "$what: answer $(cat "$T/r.out")"
	assert_running "$MH"
	n=$(line_count "$LOG")
	wait_lines "$LOG" $((n + 2)) 20
	# the lines since this restore go on from the dumped iteration
	{ head -n 1 "$LOG"; tail -n +$((L0 + 1)) "$LOG"; } >"$T/part.log"
	check_memhog_log "$T/part.log" 2 >/dev/null ||
		fail "$what: memhog log: $(check_memhog_log "$T/part.log" 2)"
	kill_tree "$MH"
	GONE_TIMEOUT=10 assert_gone "$MH"
}
restore_bg()
{
	L0=$(line_count "$LOG")
	"$CKPTCTL" restore "$T/ck2" --json >"$T/r.out" 2>"$T/r.err" &
	RPID=$!
}
# the restore not reported: exit non-zero, nothing restored, no ckpt-restore
restored_nothing()
{
	local what=$1
	wait "$RPID" && fail "$what: ckptctl said the restore succeeded: $(cat "$T/r.out")"
	log "$what: $(tail -n 1 "$T/r.err")"
	GONE_TIMEOUT=10 assert_gone "$MH"
	poll_for 10 eval '[[ -z $(pgrep -x ckpt-restore) ]]' || fail "$what: ckpt-restore left"
	logs_named_exist "$T/r.err"
}

# restore_killed STEP WHO: a restore through a ckptd started with
# CKPT_PAUSE=STEP; once paused, SIGKILL WHO (ckptd, worker, ckpt-restore)
# and let the paused process go on
restore_killed()
{
	local step=$1 who=$2 go=$T/go.$1.$2 victim
	CKPT_PAUSE=$step:$go start_ckptd
	restore_bg
	wait_for 60 "the restore to pause at $step" test -e "$go.paused"
	case $who in
	ckptd) victim=$CKPTD_PID ;;
	worker) victim=$(worker_of) ;;
	ckpt-restore) victim=$(pgrep -P "$(worker_of)" -x ckpt-restore | head -n 1) ;;
	esac
	[[ $victim =~ ^[0-9]+$ ]] || fail "no $who to kill at $step"
	kill -9 "$victim"
	[[ $who == ckptd ]] && untrack "$CKPTD_PID"
	touch "$go"
}

restore_killed ckptd-restore-done ckptd
restored_runs "ckptd killed after ckpt-restore was done"
grep -q 'ckptd went away, but the restore was committed' "$T/r.err" ||
	fail "ckptctl did not say how it knows: $(cat "$T/r.err")"

# --- 3b: ckptd killed after its worker reported, before it answered -------------
restore_killed ckptd-answer ckptd
restored_runs "ckptd killed before its answer"

# --- 3c: the worker killed after ckpt-restore committed, before it let the tree go:
# ckpt-restore goes on (too late to cancel), ckptd waits for it (it holds
# the report pipe) and answers from the commit record
restore_killed restorer-committed worker
restored_runs "worker killed after the commit"
assert_ckptd_alive
stop_ckptd

# --- 3d: ckpt-restore itself killed after the commit: the kernel lets its
# stopped tasks go (their registers are set), the worker reads the record
restore_killed restorer-committed ckpt-restore
restored_runs "ckpt-restore killed after the commit"
stop_ckptd

# --- 3e: the worker killed once ckpt-restore was executed, before it set its
# own parent-death signal: ckpt-restore sees its parent is gone and cancels
restore_killed restorer-started worker
restored_nothing "worker killed as ckpt-restore started"
stop_ckptd

# the images still restore
start_ckptd
L0=$(line_count "$LOG")
ckpt_restore "$T/ck2"
[[ $RESTORED_PID == "$MH" ]] || fail "restored $RESTORED_PID"
wait_lines "$LOG" $(($(line_count "$LOG") + 2)) 20
stop_ckptd

# --- 4: the worker killed while it copies the memory -----------------------------
# ckptd settles the directory as the caller in a child of its own, paused
# here (ckptd-settle): meanwhile ckptd answers others (the settling used to
# run in its loop: a directory on a hanging file system stalled everyone)
CKPT_PAUSE=dump-memory:$T/go4,ckptd-settle:$T/go4s start_ckptd
dump_bg "$T/ck4"
wait_for 30 "the dump to pause in the memory step" test -e "$T/go4.paused"
W=$(worker_of)
[[ -n $W ]] || fail "no worker"
kill -9 "$W"
touch "$T/go4"
wait_for 30 "ckptd to settle the dead worker's directory" test -e "$T/go4s.paused"
timeout 10 "$CKPTCTL" ps >"$T/ps.out" 2>&1 ||
	fail "ckptctl ps got no answer while ckptd settled a directory: $(cat "$T/ps.out")"
grep -q running "$T/ps.out" || fail "the settling job is not shown running: $(cat "$T/ps.out")"
kill -0 "$DPID" 2>/dev/null || fail "the dump client got its answer before the settling"
touch "$T/go4s"
wait "$DPID" && fail "ckptctl said the dump succeeded after its worker was killed"
log "worker killed during the memory: $(tail -n 1 "$T/d.err")"
memhog_untouched
no_images "$T/ck4"
[[ -s $T/ck4/dump.log ]] || fail "no dump.log for the killed worker"
logs_named_exist "$T/d.err"
assert_ckptd_alive
stop_ckptd

# --- 5: an in-process dump killed in the middle; the next dump cleans up ----------
unset CKPT_SOCKET
CKPT_PAUSE=dump-memory:$T/go5 "$CKPTCTL" dump "$MH" -D "$T/ck5" >"$T/d.out" 2>"$T/d.err" &
DPID=$!
wait_for 30 "the in-process dump to pause" test -e "$T/go5.paused"
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
memhog_untouched
ls -d "$T"/ck5.tmp.* >/dev/null 2>&1 || fail "no temporary directory to clean (test broken)"
[[ -e $T/ck5 ]] && fail "a killed dump left $T/ck5"
ckpt_dump "$MH" "$T/ck5"
ls -d "$T"/ck5.tmp.* >/dev/null 2>&1 && fail "the next dump left $(ls -d "$T"/ck5.tmp.*)"
log "the next dump removed the dead dump's $T/ck5.tmp.*"
pass
