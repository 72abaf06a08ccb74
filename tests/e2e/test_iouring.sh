#!/bin/bash
# SPDX-License-Identifier: MIT
# io_uring instances (lib/kinds/iouring.c, VMA_IOURING areas in
# dump/dump_mm.c and restorer/mem.c). tests/workloads/iouring.c drives a
# ring of 8 entries with a registered file, a registered buffer and a
# registered eventfd (WRITE_FIXED, READ, NOPs each round), leaves an SQE
# prepared and a CQE unreaped over its sleep, and checks everything itself
# (results, user_data, data read back, eventfd signals, the kernel's ring
# indices against its own counts): every line must say "bad 0".
#  - --leave-running, then a killing dump and a restore: same pid, the log
#    goes on without a gap and clean, the ring's indices (fdinfo SqHead,
#    CqTail) are the dumped ones plus what ran since, the ring is mapped at
#    the same addresses, its registered file and buffer are there;
#  - the --leave-running checkpoint restores too, its registered buffer as
#    it was at dump (pinned pages are saved while frozen, not from pipes);
#  - the same with IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
#    and with SUBMIT_ALL | COOP_TASKRUN | TASKRUN_FLAG (no system call shows
#    them: the program checks each round that a batch goes on past an SQE
#    failing at submission), and with its eventfd registered async (checked:
#    an inline completion does not signal it, an async one does);
#  - a ring fd registered (IORING_REGISTER_RING_FDS) and provided buffers
#    are refused, naming the pid and what; the program keeps running;
#  - a ring with a read of an empty pipe in flight is refused, naming the
#    pid, the fd and the request; the program keeps running untouched;
#  - fault steps of the kind fail the dump (program intact) or the restore
#    (nothing left behind).
. "$(dirname "$0")/lib.sh"

[[ -x $WL/iouring ]] || fail "$WL/iouring not found: build first (liburing-dev)"

# lines_ok LOG WHAT: "ok N" numbered 1, 2, 3... and every one "bad 0".
lines_ok()
{
	grep -n '^bad' "$1" && fail "$2: the program found a difference: $(grep -m1 '^bad' "$1")"
	awk '/^ok / { n++; if ($2 != n || $NF != 0) { print "line " NR ": " $0; bad = 1; exit } }
		END { exit bad }' "$1" || fail "$2: log not continuous or not clean"
}
ok_count() { grep -c '^ok ' "$1"; }
wait_more() { local n; n=$(ok_count "$1"); wait_for 10 "$2 more ok lines in $1" eval "(( \$(ok_count $1) >= n + $2 ))"; }
ring_fd() { for f in /proc/"$1"/fd/*; do [[ $(readlink "$f") == 'anon_inode:[io_uring]' ]] && basename "$f"; done; }
fdinfo_val() { awk -v k="$3:" '$1 == k { print $2 }' "/proc/$1/fdinfo/$2"; }
ring_maps() { grep 'anon_inode:\[io_uring\]' "/proc/$1/maps" | awk '{ print $1, $2, $3 }'; }

# ring_dump PID DIR [ARGS]: ckpt_dump, tried again (up to 5 times) when
# the dump refused requests in flight: a DEFER_TASKRUN ring's completions
# are posted only when its task asks for them, which a frozen task cannot,
# so a dump that freezes it between a submission and its wait is refused
# (docs/fd-kinds.md); the refusal must leave the program running.
ring_dump()
{
	local pid=$1 dir=$2 i
	shift 2
	for i in 1 2 3 4 5; do
		ckptctl_run dump "$pid" -D "$dir" "$@" && break
		grep -q 'requests in flight' "$ERR" && ((i < 5)) || {
			cat "$ERR"
			fail "dump of pid $pid failed (exit $RC)"
		}
		assert_running "$pid"
		log "dump $i refused requests in flight (the program ran on); again"
		sleep 0.3
	done
	[[ -s $dir/inventory.img ]] || fail "dump succeeded but $dir/inventory.img is missing"
}

# run_mode MODE [SQES]: leave-running dump, killing dump, restore, checks
# (SQES: submitted a round, 6 by default).
run_mode()
{
	local mode=$1 per=${2:-6} log=$T/$1.log pid fd head tail maps
	mkdir -p "$T/$mode"
	diag_add "$log"
	start_workload W "$T/$mode.ready" -- "$WL/iouring" "$log" "$T/$mode.ready" "$T/$mode" "$mode"
	pid=$W
	wait_grep "$log" '^ok 3 ' 10
	fd=$(ring_fd "$pid")
	[[ -n $fd ]] || fail "$mode: no io_uring fd in /proc/$pid/fd"

	ring_dump "$pid" "$T/$mode.lr.img" --leave-running
	assert_running "$pid"
	wait_more "$log" 3
	lines_ok "$log" "$mode: after --leave-running"

	maps=$(ring_maps "$pid")
	ring_dump "$pid" "$T/$mode.img"
	assert_tree_gone "$pid"
	# the indices as dumped: every line of the log is the program's last word
	head=$(awk '/^ok / { h = $4 } END { print h }' "$log")
	ckpt_restore "$T/$mode.img"
	[[ $RESTORED_PID == "$pid" ]] || fail "$mode: restored pid $RESTORED_PID, dumped $pid"
	[[ $(readlink "/proc/$pid/fd/$fd") == 'anon_inode:[io_uring]' ]] ||
		fail "$mode: fd $fd is not an io_uring instance after restore"
	[[ $(ring_maps "$pid") == "$maps" ]] ||
		fail "$mode: ring mappings differ: before '$maps', after '$(ring_maps "$pid")'"
	# (the kernel prints the registered files and buffers only when it
	# gets the ring's lock at once: the running program may hold it)
	poll_for 3 grep -q "^    0: $T/$mode/data\$" "/proc/$pid/fdinfo/$fd" ||
		fail "$mode: registered file not there: $(cat "/proc/$pid/fdinfo/$fd")"
	poll_for 3 eval "grep -A1 '^UserBufs:' '/proc/$pid/fdinfo/$fd' | grep -q '/4096\$'" ||
		fail "$mode: registered buffer not there: $(cat "/proc/$pid/fdinfo/$fd")"
	wait_more "$log" 5
	lines_ok "$log" "$mode: after restore"
	tail=$(fdinfo_val "$pid" "$fd" SqHead)
	# the program checks each round that the kernel's head is its own count;
	# here: the head went on from the dumped one (+1 prepared, +6 a round)
	(( tail > head )) || fail "$mode: SQ head $tail after restore, $head at dump"
	awk -v h="$head" -v per="$per" '/^ok / && $4 == h + per { f = 1 } END { exit !f }' "$log" ||
		fail "$mode: no round right after the dumped SQ head $head"
	log "$mode: restored, SQ head $head -> $tail, log clean"
	kill -9 "$pid"
	assert_gone "$pid"

	# the --leave-running checkpoint is the program as it was then: the
	# registered buffer's pages (pinned, written in place by the program
	# and the ring) were saved while frozen, not from pipes after resume
	local lines
	lines=$(wc -l <"$log")
	ckpt_restore "$T/$mode.lr.img"
	[[ $RESTORED_PID == "$pid" ]] || fail "$mode: lr restore gave pid $RESTORED_PID"
	wait_for 10 "5 more lines after the --leave-running restore" eval "(( \$(wc -l <$log) >= lines + 5 ))"
	tail -n +$((lines + 1)) "$log" | grep -v ' bad 0$' &&
		fail "$mode: restored from the --leave-running checkpoint, the program found a difference"
	log "$mode: the --leave-running checkpoint restores cleanly too"
	kill -9 "$pid"
	assert_gone "$pid"
}

run_mode run
run_mode defer
# SUBMIT_ALL, COOP_TASKRUN, TASKRUN_FLAG: read by the kernel reader
run_mode flags 8
# an eventfd registered with IORING_REGISTER_EVENTFD_ASYNC: likewise
run_mode evasync 8

# ---- what the restore cannot make again: refused by name, the program running ----
for mode in regring pbuf; do
	LOG=$T/$mode.log
	mkdir -p "$T/$mode"
	diag_add "$LOG"
	start_workload R "$T/$mode.ready" -- "$WL/iouring" "$LOG" "$T/$mode.ready" "$T/$mode" "$mode"
	wait_grep "$LOG" '^ok 3$' 10
	ckptctl_run dump "$R" -D "$T/$mode.img" && fail "$mode: the dump succeeded"
	case $mode in
	regring) grep -q "pid $R: fd [0-9]*: its task registered 1 io_uring fd(s) (IORING_REGISTER_RING_FDS)" "$ERR" ;;
	pbuf) grep -q "pid $R: fd [0-9]*: .*provided buffers" "$ERR" ;;
	esac || fail "$mode: the refusal does not name the pid and what: $(cat "$ERR")"
	[[ ! -e $T/$mode.img/inventory.img ]] || fail "$mode: a refused dump left a checkpoint"
	assert_running "$R"
	n=$(ok_count "$LOG")
	wait_for 10 "the $mode program to go on" eval "(( \$(ok_count $LOG) >= n + 3 ))"
	log "$mode: refused ($(cat "$ERR")), the program running"
	kill_tree "$R"
	untrack "$R"
done

# ---- a request in flight: refused -------------------------------------------------
LOG=$T/block.log
mkdir -p "$T/block"
diag_add "$LOG"
start_workload B "$T/block.ready" -- "$WL/iouring" "$LOG" "$T/block.ready" "$T/block" block
wait_grep "$LOG" '^ok 3$' 10
fd=$(ring_fd "$B")
if ckptctl_run dump "$B" -D "$T/block.img"; then
	fail "a ring with a read of an empty pipe in flight was dumped"
fi
grep -q "pid $B: fd $fd: io_uring instance with 1 request(s) in flight .*op=22" "$ERR" ||
	fail "refusal does not name the pid, the fd and the request: $(cat "$ERR")"
[[ ! -e $T/block.img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$B"
n=$(ok_count "$LOG")
wait_for 10 "the blocked-ring program to go on" eval "(( \$(ok_count $LOG) >= n + 3 ))"
grep -q '^PollList:' "/proc/$B/fdinfo/$fd" && grep -A1 '^PollList:' "/proc/$B/fdinfo/$fd" | grep -q 'op=22' ||
	fail "the request in flight is gone after the refused dump"
log "a request in flight: refused ($(cat "$ERR")), program running with it"

# ---- fault steps ---------------------------------------------------------------
LOG=$T/faults.log
mkdir -p "$T/faults"
diag_add "$LOG"
start_workload F "$T/faults.ready" -- "$WL/iouring" "$LOG" "$T/faults.ready" "$T/faults" run
wait_grep "$LOG" '^ok 3 ' 10
tree_snapshot "$F" >"$T/tree.before"
STEPS=$(fault_steps kinds | tr ' ' '\n' | grep -E '^iouring-' | tr '\n' ' ')
log "io_uring fault steps: $STEPS"
[[ $STEPS == *iouring-open* && $STEPS == *iouring-install* ]] || fail "io_uring fault steps not found: $STEPS"
for step in $STEPS; do
	dir=$T/$step.img
	if ! CKPT_FAULT=$step ckptctl_run dump "$F" -D "$dir"; then
		grep -q -- "$step" "$ERR" || fail "$step: dump error does not name the step: $(cat "$ERR")"
		assert_running "$F"
		wait_more "$LOG" 2
		lines_ok "$LOG" "$step (dump)"
		log "$step: dump refused, program intact"
		continue
	fi
	assert_tree_gone "$F"
	if CKPT_FAULT=$step ckptctl_run restore "$dir" --json; then
		fail "$step: neither the dump nor the restore failed with CKPT_FAULT=$step"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	ckpt_restore "$dir"
	[[ $RESTORED_PID == "$F" ]] || fail "$step: restored pid $RESTORED_PID, dumped $F"
	wait_more "$LOG" 2
	lines_ok "$LOG" "$step (restore)"
	log "$step: restore refused and left nothing; a normal restore then worked"
done
log PASS
