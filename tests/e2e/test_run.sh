#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptctl run, the batch-job wrapper (docs/slurm.md), without a scheduler:
#  - it exits with the job's status (exit N; a signal N: 128+N; 127 when the
#    command is missing) and passes SIGHUP on to the job;
#  - on SIGUSR1 it checkpoints the job into DIR and exits 85 (--signal and
#    --exit-code change both), the next run restores the same pid and the job
#    ends with an uninterrupted run's result and exit status;
#  - a checkpoint the dump refuses (the job writes into a pipe read outside
#    it) leaves the job running and ckptctl waiting: it exits with the job,
#    and leaves no directory behind;
#  - a job that ends with status 0 leaves no checkpoint (the next run starts
#    afresh); any other status keeps DIR's last one;
#  - --interval checkpoints with the job left running, incremental (a
#    pre-dump each time, on the one before; the checkpoint on top of it); DIR
#    restores through its chain of pre-dumps, also after a killing checkpoint;
#  - the same through ckptd as an ordinary user, whose restored job is not
#    ckptctl's child: the exit status still comes through (PIDFD_GET_INFO).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

[[ -S /run/ckpt/ckptd.sock ]] && fail "a ckptd answers at /run/ckpt/ckptd.sock: the in-process part needs none"
unset CKPT_SOCKET
STEPS=1500
COMPUTE=("$PYTHON" "$WLSRC/compute.py")
result_of() { awk '$1 == "result" { print $2, $3 }' "$1"; }
has_result() { [[ -n $(result_of "$1") ]]; }
last_step() { awk '$1 == "step" { s = $2 } END { print s + 0 }' "$1"; }
step_beyond() { (($(last_step "$1") > $2)); }

"${COMPUTE[@]}" "$STEPS" >"$T/ref.out"
want=$(result_of "$T/ref.out")
log "uninterrupted result $want"

# run_bg VAR OUT ARGS...: `ckptctl ARGS` in its own session, output (the job's
# too) appended to OUT; VAR is its pid
run_bg()
{
	local var=$1 out=$2
	shift 2
	diag_add "$out"
	setsid "${CKPTCTL_AS[@]}" "$@" </dev/null >>"$out" 2>&1 &
	printf -v "$var" %s "$!"
	TRACKED+=("$!")
}
# wait_rc PID WANT WHAT: ckptctl PID must exit with WANT within 60 s
wait_rc()
{
	local pid=$1 want=$2 what=$3 rc
	wait_for 60 "$what: ckptctl to exit" gone "$pid"
	wait "$pid"
	rc=$?
	((rc == want)) || fail "$what: ckptctl run exited $rc, want $want"
	untrack "$pid"
	log "$what: exit $rc"
}
CKPTCTL_AS=("$CKPTCTL")

# ---- exit statuses ----------------------------------------------------------------------------
run_bg P "$T/st.out" run --dir "$T/st.ck" -- sh -c 'exit 7'
wait_rc "$P" 7 "exit 7"
run_bg P "$T/st.out" run --dir "$T/st.ck" -- sh -c 'kill -KILL $$'
wait_rc "$P" 137 "SIGKILL"
run_bg P "$T/st.out" run --dir "$T/st.ck" -- /nonexistent/prog
wait_rc "$P" 127 "missing command"
run_bg P "$T/int.out" run --dir "$T/st.ck" -- sleep 30
wait_for 10 "sleep to start" file_has "$T/int.out" "started pid"
kill -HUP "$P"
wait_rc "$P" 129 "SIGHUP passed on"
[[ -e $T/st.ck ]] && fail "$T/st.ck exists although nothing was checkpointed"

# ---- checkpoint, exit 85, restore ---------------------------------------------------------------
# run_cycle OUT DIR SIG CODE RUNARGS...: start or restore, wait for progress,
# SIG -> checkpointed, exit CODE
run_cycle()
{
	local out=$1 dir=$2 sig=$3 code=$4 at
	shift 4
	run_bg P "$out" run --dir "$dir" "$@" -- "${COMPUTE[@]}" "$STEPS" 3
	at=$(last_step "$out")
	wait_for 60 "progress past step $((at + 200))" step_beyond "$out" $((at + 200))
	kill "-$sig" "$P"
	wait_rc "$P" "$code" "checkpoint on SIG$sig"
	has_result "$out" && fail "the job printed a result although it was checkpointed"
	[[ -s $dir/inventory.img && ! -e $dir.new ]] || fail "$dir is not a complete checkpoint alone"
}
OUT=$T/job.out
run_cycle "$OUT" "$T/job.ck" USR1 85
pid1=$(awk '/Z started pid/ { sub(":", "", $6); print $6 }' "$OUT")
run_cycle "$OUT" "$T/job.ck" USR2 99 --signal USR2 --exit-code 99
grep -q "Z restored pid $pid1 " "$OUT" || fail "the second run did not restore pid $pid1"
run_bg P "$OUT" run --dir "$T/job.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_rc "$P" 3 "restored job to its end"
[[ $(result_of "$OUT") == "$want" ]] || fail "result '$(result_of "$OUT")', want '$want'"
(($(grep -c "Z restored pid $pid1 " "$OUT") == 2)) || fail "not restored twice"
log "checkpointed on USR1 (85), on USR2 (99), restored twice: an uninterrupted run's result"

# ---- a checkpoint the dump refuses: the job runs on ---------------------------------------------
OUT=$T/pipe.out
diag_add "$OUT"
setsid "$CKPTCTL" run --json --dir "$T/pipe.ck" -- "${COMPUTE[@]}" "$STEPS" </dev/null 2>"$T/pipe.err" | cat >"$OUT" &
wait_for 30 "the piped job to start" step_beyond "$OUT" 100
P=$(pgrep -f "^$CKPTCTL run --json --dir $T/pipe.ck") || fail "no ckptctl for the piped job"
kill -USR1 "$P"
wait_for 30 "checkpoint_failed" file_has "$T/pipe.err" '"event":"checkpoint_failed"'
grep '"checkpoint_failed"' "$T/pipe.err" | grep -q pipe || fail "the failure does not name the pipe: $(cat "$T/pipe.err")"
wait_for 60 "the piped job to finish" has_result "$OUT"
wait_for 10 "ckptctl to exit with the job" gone "$P"
[[ $(result_of "$OUT") == "$want" ]] || fail "piped job: result '$(result_of "$OUT")', want '$want'"
grep -q '"event":"exited".*"exit_code":0' "$T/pipe.err" || fail "no exited event with code 0: $(cat "$T/pipe.err")"
[[ -e $T/pipe.ck || -e $T/pipe.ck.new ]] && fail "a refused checkpoint left a directory"
log "a refused checkpoint: logged, the job ran to its end"

# ---- --interval ------------------------------------------------------------------------------------
OUT=$T/iv.out
# (the job ends with status 3: DIR keeps its last checkpoint)
run_bg P "$OUT" run --interval 1 --dir "$T/iv.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_rc "$P" 3 "--interval run"
grep -q "Z kept $T/iv.ck keeps the job's last checkpoint (it ended with status 3)" "$OUT" ||
	fail "--interval: no 'kept' event for a job that ended with status 3"
[[ $(result_of "$OUT") == "$want" ]] || fail "--interval: result '$(result_of "$OUT")', want '$want'"
n=$(grep -c "Z checkpointed pid" "$OUT")
((n >= 1)) || fail "--interval 1: no checkpoint"
grep -q "(interval, left running)" "$OUT" || fail "--interval: no left-running checkpoint event"
[[ -s $T/iv.ck/inventory.img && ! -e $T/iv.ck.new ]] || fail "--interval: $T/iv.ck is not a complete checkpoint"
log "--interval 1: $n checkpoints, job left running, same result"
# incremental: each interval checkpoint a pre-dump (only what the job wrote
# since the one before, once there is one) and the checkpoint on top of it
grep -q "Z checkpointed pid .* incremental on $T/iv.ck.pre[0-9]*$" "$OUT" ||
	fail "--interval: no incremental checkpoint"
# the pre-dumps on the one before save what the job wrote since (compute.py
# rewrites about a third of its memory a second), not all of it again
pre_sizes()
{
	awk '/Z pre-dumped pid/ { for (i = 1; i < NF; i++) if ($(i + 2) == "of" && $(i + 3) == "memory") {
		v = $i; u = $(i + 1); m = u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1
		print int(v * m), (/written since the last one/ ? "incr" : "full") } }' "$1"
}
full=$(pre_sizes "$OUT" | awk '$2 == "full" { print $1; exit }')
[[ -n $full ]] || fail "--interval: no full pre-dump: $(grep pre-dumped "$OUT")"
if ((n >= 2)); then
	pre_sizes "$OUT" | awk -v full="$full" '$2 == "incr" { k++; if ($1 > 0.8 * full) bad++ }
		END { exit !(k >= 1 && !bad) }' ||
		fail "--interval: the pre-dumps on the one before saved about as much as the full one ($full bytes): write tracking lost? $(grep pre-dumped "$OUT")"
fi
# (a job may end during an interval checkpoint: that one fails saying so, below)
bad=$(grep "checkpoint_failed\|warning" "$OUT" | grep -v "ended during the checkpoint")
[[ -z $bad ]] || fail "--interval: $bad"
# the pre-dumps left are the chain of DIR, and DIR restores through it: run
# again, the job carries on from the last checkpoint to the same result
pres=$(compgen -G "$T/iv.ck.pre*" | wc -l)
((pres >= 1 && pres <= 8)) || fail "--interval: $pres pre-dumps left beside $T/iv.ck"
# (the restored job writes where it wrote: $OUT, a second result line)
run_bg P "$OUT" run --dir "$T/iv.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_rc "$P" 3 "restored from the incremental chain"
grep -q "Z restored pid" "$OUT" || fail "--interval: the second run did not restore $T/iv.ck"
wait_for 10 "the restored job's result" eval '(($(result_of "$OUT" | wc -l) == 2))'
[[ $(result_of "$OUT" | sort -u) == "$want" ]] ||
	fail "restored from the chain: results '$(result_of "$OUT")', want '$want' twice"
log "--interval: incremental checkpoints ($pres pre-dumps kept), DIR restores through them to the same result"

# a job that ends with status 0 has no more use for its checkpoint: the next
# run must start it afresh, so DIR and its pre-dumps go
OUT=$T/iv0.out
run_bg P "$OUT" run --interval 1 --dir "$T/iv0.ck" -- "${COMPUTE[@]}" "$STEPS"
wait_rc "$P" 0 "--interval run to status 0"
grep -q "Z checkpointed pid" "$OUT" || fail "--interval: no checkpoint of the job that ends with 0"
grep -q "Z removed $T/iv0.ck: the job ended with status 0" "$OUT" || fail "no 'removed' event: $(tail -n 3 "$OUT")"
[[ ! -e $T/iv0.ck ]] && ! compgen -G "$T/iv0.ck.*" >/dev/null ||
	fail "the checkpoint of a job that ended with 0 is left: $(echo "$T"/iv0.ck*)"
log "a job that ended with status 0: its checkpoint and pre-dumps are removed"

# job_ends_in STEP NAME WHAT: the job (sleep) is killed while its checkpoint
# is held at STEP; the checkpoint fails saying that the job ended, not that
# it runs on, no checkpoint is left, and ckptctl run exits with the job's
# own status
job_ends_in()
{
	local step=$1 name=$2 what=$3 job
	OUT=$T/$name.out
	CKPT_PAUSE=$step:$T/$name.go run_bg P "$OUT" run --dir "$T/$name.ck" -- sleep 100
	wait_for 10 "the job to start" file_has "$OUT" "Z started pid"
	job=$(sed -n 's/.*Z started pid \([0-9]*\):.*/\1/p' "$OUT" | head -n 1)
	kill -USR1 "$P"
	wait_for 30 "the checkpoint to pause at $step" test -e "$T/$name.go.paused"
	kill -KILL "$job"
	touch "$T/$name.go"
	wait_rc "$P" 137 "$what"
	grep -q "checkpoint_failed pid $job ended during the checkpoint" "$OUT" ||
		fail "$what: the failed checkpoint does not say the job ended: $(grep -v '^step' "$OUT")"
	grep -q "the job runs on" "$OUT" && fail "$what: a job that ended is said to run on: $(grep 'runs on' "$OUT")"
	[[ -e $T/$name.ck ]] && fail "$what: a checkpoint of the job that ended is left in $T/$name.ck"
	return 0
}
# the job ends during a checkpoint held before the freeze
job_ends_in dump-reserve end "the job killed during its checkpoint"
# ... and while the checkpoint seizes it (held between its seize and its
# stop): ckptctl run is the job's parent and the dump its tracer, and the
# dump's wait for that stop collected the job's exit status, which ckptctl
# run then never saw: it said "the job runs on", checkpointed a job long
# gone every interval and never exited (seen once in a fresh clone's full
# run of this test). The dump's waits leave the end of a child of its own
# to its parent now (lib/ptrace.c wait_tracee).
job_ends_in dump-seizing endf "the job killed while it was seized"

# a checkpoint signal with --interval: the killing checkpoint is incremental
# on the last pre-dump; the next run restores through the chain
OUT=$T/ivk.out
run_bg P "$OUT" run --interval 1 --dir "$T/ivk.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_for 60 "an interval checkpoint" file_has "$OUT" "Z checkpointed pid"
kill -USR1 "$P"
wait_rc "$P" 85 "checkpoint on SIGUSR1 with --interval"
# (the event after that checkpoint's start: the job may print between them,
# as it runs until the freeze)
awk '/Z checkpointing pid .* \(signal\)/ { s = 1; next } s && /^ckptctl run:/ { print; exit }' "$OUT" |
	grep -q "checkpointed pid .* incremental on $T/ivk.ck.pre" ||
	fail "--interval: the killing checkpoint is not incremental"
run_bg P "$OUT" run --dir "$T/ivk.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_rc "$P" 3 "restored from an incremental killing checkpoint"
[[ $(result_of "$OUT") == "$want" ]] || fail "--interval, signal: result '$(result_of "$OUT")', want '$want'"
log "--interval then SIGUSR1: incremental killing checkpoint, restored to the same result"

# ---- through ckptd as an ordinary user ----------------------------------------------------------
chmod 0711 "$T"
COMPUTE=("$PYTHON" "$(user_copy "$WLSRC/compute.py")")
ckptd_user_add UID_A ckpt-run-a
start_ckptd
chmod 0711 "$T/run"
mkdir -m 0700 "$T/u" && chown ckpt-run-a: "$T/u"
# the user's job works in a directory the user can enter: its cwd is
# restored with the user's rights (the checkout may be where only root goes)
cd "$T/u" || fail "cd $T/u"
CKPTCTL_AS=(setpriv --reuid=ckpt-run-a --regid="$(id -g ckpt-run-a)" --clear-groups --inh-caps=-all -- "$CKPTCTL")
OUT=$T/u/job.out
touch "$OUT" && chown ckpt-run-a: "$OUT"
run_cycle "$OUT" "$T/u/job.ck" USR1 85
run_bg P "$OUT" run --dir "$T/u/job.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_rc "$P" 3 "restored through ckptd, to its end"
grep -q "Z restored pid .* through ckptd" "$OUT" || fail "not restored through ckptd"
[[ $(result_of "$OUT") == "$want" ]] || fail "through ckptd: result '$(result_of "$OUT")', want '$want'"
# --interval through ckptd: incremental, then a killing checkpoint on the
# last pre-dump, restored to the end
OUT=$T/u/iv.out
touch "$OUT" && chown ckpt-run-a: "$OUT"
run_bg P "$OUT" run --interval 1 --dir "$T/u/iv.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_for 60 "an incremental interval checkpoint through ckptd" file_has "$OUT" \
	"Z checkpointed pid .* incremental on $T/u/iv.ck.pre"
kill -USR1 "$P"
wait_rc "$P" 85 "incremental checkpoint through ckptd"
has_result "$OUT" && fail "the job printed a result although it was checkpointed"
run_bg P "$OUT" run --dir "$T/u/iv.ck" -- "${COMPUTE[@]}" "$STEPS" 3
wait_rc "$P" 3 "restored through ckptd from an incremental checkpoint, to its end"
grep -q "Z restored pid .* through ckptd" "$OUT" || fail "--interval: not restored through ckptd"
[[ $(result_of "$OUT") == "$want" ]] || fail "--interval through ckptd: result '$(result_of "$OUT")', want '$want'"
log "through ckptd as a user: checkpointed, restored (then with --interval: incremental), exit status 3 of a job not our child"
pass
