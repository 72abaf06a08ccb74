#!/bin/bash
# SPDX-License-Identifier: MIT
# A Slurm batch job checkpointed and requeued, end to end (docs/slurm.md).
# The test runs its own one-node cluster on this machine: munged, slurmctld
# and slurmd (Debian's packages, its own slurm.conf with JobRequeue=1 and
# RequeueExit=85, proctrack/cgroup, state and spool under the work
# directory, its own ports and munge socket), and ckptd. An unprivileged user
# submits a job whose script execs `ckptctl run --dir CK -- python3
# compute.py` (a deterministic computation with its state in memory only).
#  1. Twice during the run, `scancel --signal=USR1 --batch`: ckptctl run
#     checkpoints the job through ckptd and exits 85, Slurm requeues it, the
#     next run restores it (with --cgroups=caller: into the job's own
#     cgroup, not ckptd's). The job prints exactly an uninterrupted run's
#     result, and `scontrol show job` says Restarts=2.
#  2. The same with `--time=1 --signal=B:USR1@SECS`: Slurm itself signals the
#     job before its time limit; every run is checkpointed and requeued until
#     the computation is done, with an uninterrupted run's result.
#  3. Preemption (PreemptMode=REQUEUE, GraceTime, preempt_send_user_signal):
#     a job of a higher partition preempts it; it is checkpointed on the
#     signal, requeued, and restored once the urgent job is done.
# The daemons run in the foreground (-D / --foreground) under the test's
# reaper and are killed at the end. Every wait is bounded.
: "${CKPT_E2E_TIMEOUT:=270}"
export CKPT_E2E_TIMEOUT
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

for b in munged slurmctld slurmd sbatch scontrol scancel sinfo; do
	command -v "$b" >/dev/null ||
		fail "$b not found (packaging/install-deps.sh installs slurmctld slurmd slurm-client munge)"
done
# compute.py steps: ~10 s uninterrupted on an idle machine here, 25 s when busy
STEPS=${SLURM_COMPUTE_STEPS:-3000}
NODE=$(hostname)
# ports of our own, away from a Slurm the machine may run
PORT=$((20000 + $$ % 20000))

chmod 0711 "$T"
# what the user's batch job runs, where the user can reach it
UCKPTCTL=$(user_copy "$CKPT_BUILD/ckptctl")
UCOMPUTE=$(user_copy "$WLSRC/compute.py")
ckptd_user_add JOBUID ckpt-slurm
JOBUSER=ckpt-slurm
JOBGID=$(id -g "$JOBUSER")
# Slurm's own cgroups (proctrack/cgroup: freezer/slurm_NODE/uid_U/job_J/step_S),
# removed at the end if this test made them; the daemons are stopped first.
SLURM_CGROUPS=()
for h in /sys/fs/cgroup/freezer /sys/fs/cgroup/unified /sys/fs/cgroup; do
	[[ -d $h && ! -e $h/slurm_$NODE ]] && SLURM_CGROUPS+=("$h/slurm_$NODE")
done
SLURM_DAEMONS=()
slurm_cleanup()
{
	local p d
	for p in "${SLURM_DAEMONS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${SLURM_DAEMONS[@]}"; do poll_for 5 gone "$p"; done
	for d in "${SLURM_CGROUPS[@]}"; do
		[[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}
trap 'rc=$?; slurm_cleanup; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cleanup' EXIT
start_ckptd
# the job's user reaches the socket; the test's own dirs stay root's
chmod 0711 "$T/run"

# ---- the uninterrupted run, while the cluster comes up ---------------------------
REF=$T/ref.out
diag_add "$REF"
"$PYTHON" "$WLSRC/compute.py" "$STEPS" >"$REF" 2>&1 &
REF_PID=$!
TRACKED+=("$REF_PID")

# ---- munge ---------------------------------------------------------------------------
MUNGE=$T/munge
mkdir -m 0700 "$MUNGE"
head -c 1024 /dev/urandom >"$MUNGE/munge.key"
chmod 0400 "$MUNGE/munge.key"
diag_add "$MUNGE/munged.log"
munged --foreground --force --socket="$MUNGE/munge.sock" --key-file="$MUNGE/munge.key" \
	--pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" \
	--seed-file="$MUNGE/munged.seed" 2>>"$MUNGE/munged.log" &
TRACKED+=($!)
SLURM_DAEMONS+=($!)
disown $!
munge_ready() { [[ -S $MUNGE/munge.sock ]]; }
wait_for 10 "munged to listen" munge_ready
chmod 0711 "$MUNGE" # the socket: for the user's sbatch and scontrol too

# ---- slurm ------------------------------------------------------------------------------
ETC=$T/etc
SPOOL=$T/slurm
mkdir -m 0755 "$ETC" "$SPOOL" "$SPOOL/state" "$SPOOL/d"
cat >"$ETC/slurm.conf" <<EOF
ClusterName=ckpttest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.sock
CredType=cred/munge
StateSaveLocation=$SPOOL/state
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$SPOOL/slurmctld.pid
SlurmdPidFile=$SPOOL/slurmd.pid
SlurmctldLogFile=$SPOOL/slurmctld.log
SlurmdLogFile=$SPOOL/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/cgroup
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobRequeue=1
RequeueExit=85
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
KillWait=10
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=ckpt Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=1 PreemptMode=REQUEUE GraceTime=60
PartitionName=urgent Nodes=$NODE MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=2 PreemptMode=OFF
EOF
cat >"$ETC/cgroup.conf" <<EOF
CgroupAutomount=no
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=no
EOF
export SLURM_CONF=$ETC/slurm.conf
diag_add "$SPOOL/slurmctld.log" "$SPOOL/slurmd.log"
slurmctld -D -i -f "$SLURM_CONF" 2>>"$SPOOL/slurmctld.log" &
TRACKED+=($!)
SLURM_DAEMONS+=($!)
disown $!
slurmd -D -f "$SLURM_CONF" 2>>"$SPOOL/slurmd.log" &
TRACKED+=($!)
SLURM_DAEMONS=("$!" "${SLURM_DAEMONS[@]}")
disown $!
node_idle() { [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) == idle ]]; }
wait_for 40 "node $NODE to be idle in slurm" node_idle
log "slurm up: node $NODE idle (ports $PORT, $((PORT + 1)))"

# ---- the job ---------------------------------------------------------------------------
JOB_DIR=$T/job
mkdir -m 0700 "$JOB_DIR"
chown "$JOBUSER:$JOBGID" "$JOB_DIR"
# job_script NAME [PACE]: the batch script, run as the user (compute.py
# sleeps PACE seconds every 50 steps: a longer run, the same result)
job_script()
{
	cat >"$JOB_DIR/$1.sh" <<EOF
#!/bin/bash
# a bash script runs a trap only after its foreground command returns: exec
exec "$UCKPTCTL" --socket "$SOCK" run --dir "$JOB_DIR/$1.ck" -- \\
	"$PYTHON" "$UCOMPUTE" "$STEPS" 0 ${2:-0}
EOF
	chown "$JOBUSER:$JOBGID" "$JOB_DIR/$1.sh"
	chmod 0700 "$JOB_DIR/$1.sh"
}

# submit VAR NAME SBATCH_ARGS...: sbatch as the user; VAR is the job id
# (PACE from the environment: see job_script)
submit()
{
	local var=$1 name=$2 id
	shift 2
	job_script "$name" "${PACE:-0}"
	id=$(cd "$JOB_DIR" && as_user "$JOBUSER" env SLURM_CONF="$SLURM_CONF" \
		sbatch --parsable --job-name="$name" --output="$JOB_DIR/$name.out" \
		--open-mode=append --requeue "$@" "$JOB_DIR/$name.sh" 2>"$T/sbatch.err") ||
		fail "sbatch: $(cat "$T/sbatch.err")"
	diag_add "$JOB_DIR/$name.out"
	printf -v "$var" %s "$id"
	log "submitted $name as job $id ($*)"
}

job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }
job_state_is() { [[ $(job_field "$1" JobState) == "$2" ]]; }
count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
count_at_least() { (($(count "$1" "$2") >= $3)); }
last_step() { awk '$1 == "step" { s = $2 } END { print s + 0 }' "$1"; }
step_beyond() { (($(last_step "$1") > $2)); }
result_of() { awk '$1 == "result" { print $2, $3 }' "$1"; }
has_result() { [[ -n $(result_of "$1") ]]; }

# A requeued job waits for its begin time (Slurm holds it about two minutes
# after a requeue): make it eligible sooner, but not at once. Launched within a
# second or so of its previous run's end, slurmd may still count the job as
# killed and refuse it ("Job N already killed, do not launch batch job"),
# and the job FAILS. So: pending for 5 s, and the node idle (done with the
# previous run), first.
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1; }
release_when_pending()
{
	local id=$1 st key
	st=$(job_field "$id" JobState)
	key=$id/$(job_field "$id" Restarts)
	if [[ $st == PENDING && ${PENDING_KEY:-} != "$key" ]]; then
		PENDING_KEY=$key
		PENDING_SINCE=${EPOCHREALTIME/./}
		log "job $id pending: Reason=$(job_field "$id" Reason) StartTime=$(job_field "$id" StartTime)"
	fi
	if [[ $st == PENDING ]] && ((${EPOCHREALTIME/./} - PENDING_SINCE > 5000000)) &&
		[[ $(node_state) == idle ]]; then
		scontrol update JobId="$id" StartTime=now >/dev/null 2>&1
		scontrol release "$id" >/dev/null 2>&1
	fi
	[[ $st == RUNNING ]] && return 0
	case $st in
	FAILED | TIMEOUT | CANCELLED | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | COMPLETED)
		fail "job $id ended $st while it was to run again" ;;
	esac
	return 1
}
wait_running()
{
	poll_for "${2:-60}" release_when_pending "$1" && return 0
	scontrol show job "$1" >"$T/job-$1.show" 2>&1
	diag_add "$T/job-$1.show"
	sinfo -N -l >>"$T/job-$1.show" 2>&1
	fail "timed out after ${2:-60}s waiting for job $1 to run again (state $(job_field "$1" JobState), reason $(job_field "$1" Reason))"
}

# checkpoint_once ID OUT N: the N-th checkpoint by scancel --signal=USR1 --batch
checkpoint_once()
{
	local id=$1 out=$2 n=$3 at
	at=$(last_step "$out")
	wait_for 60 "job $id to make progress past step $((at + 300))" step_beyond "$out" $((at + 300))
	at=$(last_step "$out")
	scancel --signal=USR1 --batch "$id" || fail "scancel --signal=USR1 --batch $id"
	wait_for 60 "checkpoint $n of job $id" count_at_least "$out" "exiting with 85" "$n"
	log "job $id checkpointed at step $at and exited 85 ($n)"
	has_result "$out" && fail "job $id printed a result although it was checkpointed"
	wait_running "$id" 60
	wait_for 60 "restore $n of job $id" count_at_least "$out" "Z restored pid" "$n"
	log "job $id requeued and restored ($n): $(grep "Z restored pid" "$out" | tail -n 1)"
	assert_in_job_cgroup "$id" "$out"
}

# assert_in_job_cgroup ID OUT: the restored job is in the job's cgroup (Slurm's
# proctrack/cgroup: freezer .../job_ID/step_batch), not in ckptd's
assert_in_job_cgroup()
{
	local id=$1 out=$2 pid cg line
	line=$(grep "Z restored pid" "$out" | tail -n 1)
	pid=$(sed -n 's/.*Z restored pid \([0-9][0-9]*\).*/\1/p' <<<"$line")
	[[ -n $pid ]] || fail "no pid in job $id's line '$line'"
	cg=$(grep -E '^[0-9]+:([^:]*,)?freezer(,[^:]*)?:' "/proc/$pid/cgroup" 2>/dev/null | cut -d: -f3)
	[[ $cg == */job_$id/step_batch ]] ||
		fail "restored pid $pid of job $id is in freezer cgroup '$cg', not the job's step_batch (line: $line; $(ps -o pid,stat,cmd -p "$pid" | tail -n +2))"
	log "restored pid $pid is in the job's cgroup $cg"
}

wait_for 120 "the uninterrupted run to finish" has_result "$REF"
want=$(result_of "$REF")
log "uninterrupted result: $want"

# ---- 1. scancel --signal=USR1 --batch, twice --------------------------------------------
submit J1 sig
OUT1=$JOB_DIR/sig.out
wait_running "$J1" 30
wait_for 30 "job $J1 to start compute.py" file_has "$OUT1" " started pid "
checkpoint_once "$J1" "$OUT1" 1
checkpoint_once "$J1" "$OUT1" 2
wait_for 90 "job $J1 to complete" job_state_is "$J1" COMPLETED
got=$(result_of "$OUT1")
[[ $got == "$want" ]] || fail "job $J1: result '$got', an uninterrupted run gives '$want'"
restarts=$(job_field "$J1" Restarts)
[[ $restarts == 2 ]] || fail "job $J1: Restarts=$restarts, want 2"
[[ $(job_field "$J1" ExitCode) == 0:0 ]] || fail "job $J1: ExitCode=$(job_field "$J1" ExitCode)"
grep -q 'restored pid .* through ckptd' "$OUT1" || fail "job $J1 was not restored through ckptd"
log "job $J1: uninterrupted result after 2 checkpoints, Restarts=$restarts"

# ---- 2. --time and --signal=B:USR1@SECS ------------------------------------------------------
# Slurm's time-limit check runs every 30 s or so: the signal comes up to 30 s
# into each run of this one-minute job (Slurm may send it up to a minute
# early, never late), and the job is checkpointed before the limit. The job
# is paced to last over 30 s (0.5 s every 50 steps), so that it is signalled.
PACE=0.5 submit J2 timed --time=1 --signal=B:USR1@30
OUT2=$JOB_DIR/timed.out
wait_running "$J2" 30
deadline=$((${EPOCHREALTIME/./} + 200 * 1000000))
n=0
until job_state_is "$J2" COMPLETED; do
	((${EPOCHREALTIME/./} < deadline)) || fail "job $J2 did not complete in 200 s"
	st=$(job_field "$J2" JobState)
	case $st in
	FAILED | TIMEOUT | CANCELLED | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
		fail "job $J2 ended $st" ;;
	esac
	c=$(count "$OUT2" "exiting with 85")
	if ((c > n)); then
		n=$c
		log "job $J2 checkpointed by Slurm's signal before its time limit ($n)"
		wait_running "$J2" 60
		wait_for 60 "restore $n of job $J2" count_at_least "$OUT2" "Z restored pid" "$n"
		assert_in_job_cgroup "$J2" "$OUT2"
	fi
	sleep 0.2
done
got=$(result_of "$OUT2")
[[ $got == "$want" ]] || fail "job $J2: result '$got', an uninterrupted run gives '$want'"
restarts=$(job_field "$J2" Restarts)
((n >= 1)) || fail "job $J2 completed without a checkpoint: raise SLURM_COMPUTE_STEPS"
[[ $restarts == "$n" ]] || fail "job $J2: Restarts=$restarts, $n checkpoints"
grep -q 'signal 10 ' "$OUT2" || fail "job $J2: no SIGUSR1 from Slurm in its output"
log "job $J2: uninterrupted result after $n checkpoint(s) before the time limit, Restarts=$restarts"

# ---- 3. preemption: PreemptMode=REQUEUE, GraceTime, preempt_send_user_signal ---------------
# The job takes both CPUs; a job of a higher partition preempts it. Slurm sends
# the job's --signal (USR1, to the batch step: B:) at once instead of SIGTERM
# (SlurmctldParameters=preempt_send_user_signal), ckptctl run checkpoints and
# exits 85, the urgent job runs, then the preempted one is restored. (Paced:
# it must still run when the preemption comes.)
PACE=0.2 submit J3 preempted -c 2 --signal=B:USR1@10
OUT3=$JOB_DIR/preempted.out
wait_running "$J3" 30
wait_for 30 "job $J3 to start compute.py" file_has "$OUT3" " started pid "
wait_for 60 "job $J3 to make progress" step_beyond "$OUT3" 300
id=$(cd "$JOB_DIR" && as_user "$JOBUSER" env SLURM_CONF="$SLURM_CONF" sbatch --parsable \
	-p urgent -c 2 --output=/dev/null --wrap "sleep 3" 2>"$T/sbatch.err") ||
	fail "sbatch urgent: $(cat "$T/sbatch.err")"
log "submitted the urgent job $id"
wait_for 60 "job $J3 to be checkpointed on preemption" file_has "$OUT3" "exiting with 85"
grep -q 'signal 10 ' "$OUT3" || fail "job $J3: preempted without SIGUSR1"
wait_for 60 "the urgent job $id to complete" job_state_is "$id" COMPLETED
wait_running "$J3" 60
wait_for 60 "job $J3 to be restored" file_has "$OUT3" "Z restored pid"
assert_in_job_cgroup "$J3" "$OUT3"
wait_for 90 "job $J3 to complete" job_state_is "$J3" COMPLETED
got=$(result_of "$OUT3")
[[ $got == "$want" ]] || fail "job $J3: result '$got', an uninterrupted run gives '$want'"
restarts=$(job_field "$J3" Restarts)
[[ $restarts == 1 ]] || fail "job $J3: Restarts=$restarts, want 1"
log "job $J3: preempted, checkpointed, restored after the urgent job: uninterrupted result"
pass
