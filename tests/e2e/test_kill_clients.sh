#!/bin/bash
# SPDX-License-Identifier: MIT
# Kill the client: memhog ($MIB MiB) dumped by an in-process `ckptctl dump`
# SIGKILLed at every dump step, then restored while `ckptctl restore`,
# ckpt-restore or ckptd's worker is SIGKILLed at restore stages (in process
# and through ckptd), each point fixed by CKPT_PAUSE. The truth contract
# (docs/security.md): a killed dump leaves the program running untouched
# and no checkpoint at DIR (except a complete one, killed after the
# publish), its DIR.tmp.* goes with the next dump; a restore that was not
# reported leaves no task of the tree and the images as they were; a
# surviving client never says success.
#
# 256 MiB rather than 512: about 35 restores and dumps of it, each reading
# the pages, must fit in the 150 s budget with two shared cores; nothing
# here depends on the size (the memory stage is paused, not raced).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

MIB=${KILL_MIB:-256}
LOG=$T/memhog.log
start_workload MH "$T/memhog.ready" -- "$WL/memhog" "$MIB" "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 3 30
diag_add "$T/c.err" "$T/c.out"
N=0

memhog_untouched()
{
	local n
	assert_running "$MH"
	n=$(line_count "$LOG")
	wait_lines "$LOG" $((n + 2)) 10
	check_memhog_log "$LOG" >/dev/null || fail "memhog log: $(check_memhog_log "$LOG")"
}
# restorers: the ckpt-restore processes this test started (the tasks it
# creates carry its name until their memory is restored: not those)
restorers()
{
	local p
	for p in $(tree_pids "$REAPER_PID"); do
		proc_stat "$p" && [[ $S_COMM == ckpt-restore && $p != "$MH" ]] && echo "$p"
	done
}
worker_of() { pgrep -P "$CKPTD_PID" | head -n 1; }

# pause_and_kill STEP WHO CMD...: run CMD with CKPT_PAUSE=STEP (in its
# environment, or ckptd's when it goes through ckptd), SIGKILL WHO
# (ckptctl, ckpt-restore, worker) once paused, release the pause; the
# client's exit status in $KRC.
pause_and_kill()
{
	local step=$1 who=$2 go victim
	shift 2
	N=$((N + 1))
	go=$T/go.$N
	if [[ -n ${CKPT_SOCKET:-} ]]; then
		stop_ckptd
		CKPT_PAUSE=$step:$go start_ckptd
		"$@" >"$T/c.out" 2>"$T/c.err" &
	else
		CKPT_PAUSE=$step:$go "$@" >"$T/c.out" 2>"$T/c.err" &
	fi
	local cpid=$!
	wait_for 60 "$step to pause" test -e "$go.paused"
	case $who in
	ckptctl) victim=$cpid ;;
	ckpt-restore) victim=$(restorers) ;;
	worker) victim=$(worker_of) ;;
	esac
	[[ $victim =~ ^[0-9]+$ ]] || fail "no single $who to kill at $step: '$victim'"
	kill -9 "$victim"
	# a killed client is gone (its connection closed) before the paused
	# side goes on: that is the moment being tested, not a race with it
	if [[ $who == ckptctl ]]; then
		wait "$cpid" 2>/dev/null
		KRC=$?
		touch "$go"
	else
		touch "$go"
		wait "$cpid" 2>/dev/null
		KRC=$?
	fi
	log "$who killed at $step: client exit $KRC: $(tail -n 1 "$T/c.err")"
}

# --- 1: an in-process dump killed at each step -----------------------------------
unset CKPT_SOCKET
for step in dump-seize dump-memory dump-write dump-commit dump-check; do
	pause_and_kill "$step" ckptctl "$CKPTCTL" dump "$MH" -D "$T/ck"
	memhog_untouched
	[[ -e $T/ck ]] && fail "a dump killed at $step left $T/ck: $(ls "$T/ck")"
	# each attempt removed the temporary directory of the one before
	tmps=$(ls -d "$T"/ck.tmp.* 2>/dev/null | wc -l)
	((tmps <= 1)) || fail "$tmps temporary directories after $step: $(ls -d "$T"/ck.tmp.*)"
done
# killed after the publish, before the tree is killed: the checkpoint is
# complete and verified, the program runs untouched (what --leave-running
# makes); the client said nothing, and a complete checkpoint is no partial
# output: it stays.
pause_and_kill dump-finish ckptctl "$CKPTCTL" dump "$MH" -D "$T/ckfin"
memhog_untouched
[[ -s $T/ckfin/inventory.img ]] || fail "killed after the publish, but $T/ckfin has no inventory.img"
ls -d "$T"/ckfin.tmp.* >/dev/null 2>&1 && fail "the published dump left $(ls -d "$T"/ckfin.tmp.*)"
"$CKPT_BUILD/ckpt-restore" --plan "$T/ckfin" >/dev/null || fail "the checkpoint left at dump-finish does not verify"

# the next dump to the same directory works and leaves no temporary directory
ckpt_dump "$MH" "$T/ck"
ls -d "$T"/ck.tmp.* >/dev/null 2>&1 && fail "the next dump left $(ls -d "$T"/ck.tmp.*)"
assert_tree_gone "$MH"
untrack "$MH"
img_sums() { (cd "$T/ck" && sha256sum -- *.img); } # not restore.log
img_sums >"$T/sums"

# restore_left_nothing: after a restore that was not reported as done, no
# task of the tree, no ckpt-restore, the images unchanged
restore_left_nothing()
{
	GONE_TIMEOUT=10 assert_gone "$MH"
	poll_for 5 eval '[[ -z $(restorers) ]]' || fail "ckpt-restore still runs: $(restorers)"
	img_sums | diff -u "$T/sums" - || fail "the images changed"
	logs_named_exist "$T/c.err"
}

# restore_kills WHO STAGES...: SIGKILL WHO while the restore is paused at
# each stage; a surviving client must report failure, nothing may be left.
restore_kills()
{
	local who=$1 stage
	shift
	for stage in "$@"; do
		pause_and_kill "restore-$stage" "$who" "$CKPTCTL" restore "$T/ck" --json
		if [[ $who != ckptctl ]] && ((KRC == 0)); then
			fail "ckptctl said the restore succeeded after $who was killed at $stage"
		fi
		restore_left_nothing
	done
}

# --- 2: in-process restores ---------------------------------------------------------
unset CKPT_SOCKET
restore_kills ckpt-restore files tree fds memory locks creds signals resume
restore_kills ckptctl files tree memory creds signals resume

# --- 3: through ckptd ------------------------------------------------------------------
start_ckptd
restore_kills ckpt-restore tree memory signals resume
restore_kills ckptctl tree memory resume
restore_kills worker memory resume
# the client gone after ckpt-restore committed (the worker has its result):
# too late to undo, as a dump client killed after the publish; the tree
# runs, the client said nothing
pause_and_kill ckptd-restore-done ckptctl "$CKPTCTL" restore "$T/ck" --json
memhog_untouched
kill_tree "$MH"
GONE_TIMEOUT=10 assert_gone "$MH"
img_sums | diff -u "$T/sums" - || fail "the images changed"
stop_ckptd

# --- the images still restore, memhog goes on where it was dumped ---------------
ckpt_restore "$T/ck"
[[ $RESTORED_PID == "$MH" ]] || fail "restored $RESTORED_PID"
n=$(line_count "$LOG")
wait_lines "$LOG" $((n + 2)) 20
pass
