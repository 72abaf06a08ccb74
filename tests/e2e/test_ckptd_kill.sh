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
	check_memhog_log "$LOG" >/dev/null || fail "memhog log: $(check_memhog_log "$LOG")"
}
no_images() { [[ -z $(find "$1" -name '*.img' 2>/dev/null) ]] || fail "images left in $1: $(ls "$1")"; }
logs_named_exist()
{
	local f
	for f in $(grep -oE '/[^ ]*(dump|restore)\.log' "$1"); do
		[[ -e $f ]] || fail "the error names $f, which does not exist"
	done
}
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
CKPT_PAUSE=ckptd-restore-done:$T/go3 start_ckptd
"$CKPTCTL" restore "$T/ck2" --json >"$T/r.out" 2>"$T/r.err" &
RPID=$!
wait_for 60 "the restore to pause when done" test -e "$T/go3.paused"
kill -9 "$CKPTD_PID"
untrack "$CKPTD_PID"
touch "$T/go3"
wait "$RPID" && fail "ckptctl said the restore succeeded after ckptd was killed"
log "ckptd killed after the restore: $(tail -n 1 "$T/r.err")"
GONE_TIMEOUT=10 assert_gone "$MH"
logs_named_exist "$T/r.err"

# the images still restore
start_ckptd
ckpt_restore "$T/ck2"
[[ $RESTORED_PID == "$MH" ]] || fail "restored $RESTORED_PID"
wait_lines "$LOG" $(($(line_count "$LOG") + 2)) 20
stop_ckptd

# --- 4: the worker killed while it copies the memory -----------------------------
CKPT_PAUSE=dump-memory:$T/go4 start_ckptd
dump_bg "$T/ck4"
wait_for 30 "the dump to pause in the memory step" test -e "$T/go4.paused"
W=$(worker_of)
[[ -n $W ]] || fail "no worker"
kill -9 "$W"
touch "$T/go4"
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
