#!/bin/bash
# SPDX-License-Identifier: MIT
# Process and thread state across dump and restore (tests/workloads/procstate.c):
# personality, no_new_privs, capabilities per thread (a dropped one, an
# ambient one, a bounding set drop), securebits, seccomp filters (shared and
# per thread) and strict mode, parent-death signals, child subreaper, THP
# disable, timer slack, policy, nice and I/O priority per thread, CPU affinity. The /proc
# values of every thread are compared before the dump and after the restore
# (same tids), the workload checks its own state every 100 ms, and after the
# restore an orphaned grandchild is adopted and reaped by the subreaper.
. "$(dirname "$0")/lib.sh"

LOG=$T/procstate.log
ORPHAN=$T/orphan
diag_add "$LOG"

# "pid tid field value" for every thread of the tree
procstate_snapshot()
{
	local p tid f stat rest
	for p in $(tree_pids "$1"); do
		for f in /proc/"$p"/task/*; do
			tid=${f##*/}
			grep -E '^(Name|NoNewPrivs|Seccomp|Seccomp_filters|Cap(Inh|Prm|Eff|Bnd|Amb)|Cpus_allowed_list|THP_enabled):' "$f/status" |
				sed "s/^/$p $tid /"
			echo "$p $tid personality $(<"$f/personality")"
			read -r stat <"$f/stat"
			rest=${stat##*) }
			# fields 19 (nice), 40 (rt_priority), 41 (policy), counted from 1 (pid)
			echo "$p $tid nice/rtprio/policy $(awk '{print $17, $38, $39}' <<<"$rest")"
		done
		echo "$p timerslack_ns $(<"/proc/$p/timerslack_ns")"
		# resource limits: "Max open files  900  5000  files" -> "limit Max_open_files 900 5000"
		sed -n '2,$p' /proc/"$p"/limits |
			awk -v p="$p" '{ n = substr($0, 1, 26); gsub(/ +$/, "", n); gsub(/ /, "_", n);
				split(substr($0, 27), v, " +"); print p, "limit", n, v[1], v[2] }'
	done
}

value() { awk -v p="$2" -v t="$3" -v f="$4" '$1 == p && $2 == t && $3 == f {print $4; exit}' "$1"; }

start_workload PS "$T/ps.ready" -- "$WL/procstate" "$LOG" "$T/ps.ready" "$ORPHAN"
wait_grep "$LOG" '^child ready' 10
wait_grep "$LOG" '^ok t2 2$' 10
wait_grep "$LOG" '^ok c1 2$' 10
grep -q '^bad' "$LOG" && fail "the workload saw a change before any dump: $(grep '^bad' "$LOG" | head -3)"
read -r _ _ _ STRICT _ GRANDCHILD <<<"$(grep '^child ready' "$LOG")"
CHILD=$(awk '/^child [0-9]/ {print $2}' "$LOG")
T1=$(awk '/^start t1 / {print $4}' "$LOG")
T2=$(awk '/^start t2 / {print $4}' "$LOG")
log "main $PS t1 $T1 t2 $T2 child $CHILD strict $STRICT grandchild $GRANDCHILD"

# limits of their own (set from outside: restored by the restorer from
# its process, not by remote calls in the task, when it may)
prlimit --pid "$PS" --nofile=900:5000 --core=4096:unlimited --stack=4194304:16777216 ||
	fail "prlimit on $PS"
prlimit --pid "$CHILD" --nproc=5000:6000 --memlock=65536:131072 || fail "prlimit on $CHILD"
procstate_snapshot "$PS" >"$T/state.before"
grep -q "^$PS limit Max_open_files 900 5000$" "$T/state.before" ||
	fail "no limits in the snapshot: $(grep limit "$T/state.before" | head -3)"
tree_snapshot "$PS" >"$T/tree.before"
# the workload did set what we test
b=$T/state.before
[[ $(value "$b" "$PS" "$PS" personality) == 00440000 ]] || fail "personality of main: $(value "$b" "$PS" "$PS" personality)"
[[ $(value "$b" "$PS" "$T2" Seccomp_filters:) == 2 && $(value "$b" "$PS" "$T1" Seccomp_filters:) == 1 ]] ||
	fail "filters: t1 $(value "$b" "$PS" "$T1" Seccomp_filters:) t2 $(value "$b" "$PS" "$T2" Seccomp_filters:)"
[[ $(value "$b" "$CHILD" "$STRICT" Seccomp:) == 1 ]] || fail "strict thread not in strict mode"
[[ $(value "$b" "$PS" "$T1" NoNewPrivs:) == 1 && $(value "$b" "$PS" "$PS" NoNewPrivs:) == 0 ]] || fail "no_new_privs not per thread"
[[ $(value "$b" "$PS" "$T1" CapEff:) != "$(value "$b" "$PS" "$PS" CapEff:)" ]] || fail "t1 did not drop a capability"
[[ $(value "$b" "$PS" "$T2" Cpus_allowed_list:) == 0 ]] || fail "t2 not on CPU 0"
# I/O priorities (class << 13 | level): t1 idle, t2 best-effort 2
grep -q '^start t1 .* ioprio 24576 ' "$LOG" && grep -q '^start t2 .* ioprio 16386 ' "$LOG" ||
	fail "the I/O priorities are not set: $(grep '^start' "$LOG")"
# filter A makes uname fail with EMLINK (31), B (newer, t2 only) with ETXTBSY (26)
grep -q '^start main .* uname 31 sysinfo 0$' "$LOG" && grep -q '^start t2 .* uname 26 sysinfo 0$' "$LOG" ||
	fail "the filters do not act as expected: $(grep '^start' "$LOG")"

# a program under seccomp (strict mode too) is dumped without being touched:
# the dump's remote syscalls run with its filters suspended
lines=$(line_count "$LOG")
ckpt_dump "$PS" "$T/img0" --leave-running
for n in main t1 t2 c1; do
	wait_for 10 "'ok $n' after --leave-running" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok $n '"
done
assert_tree_running "$PS"
procstate_snapshot "$PS" >"$T/state.left"
diff -u "$T/state.before" "$T/state.left" || fail "a dump with --leave-running changed the state"

ckpt_dump "$PS" "$T/img"
assert_tree_gone "$PS"
grep -q '^bad' "$LOG" && fail "the workload saw a change while it was dumped: $(grep '^bad' "$LOG" | head -3)"
ckptctl_run show "$T/img" || fail "ckptctl show failed"
for k in seccomp_filters seccomp_mode cpu_affinity sched timerslack_ns pdeathsig child_subreaper; do
	grep -q "\"$k\"" "$OUT" || fail "ckptctl show prints no $k"
done

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$PS" ]] || fail "restored root pid $RESTORED_PID, dumped $PS"
assert_same_tree "$T/tree.before" "$PS"
procstate_snapshot "$PS" >"$T/state.after"
diff -u "$T/state.before" "$T/state.after" || fail "process/thread state changed across dump and restore (pid tid field value)"
log "same state: $(wc -l <"$T/state.after") values of $(grep -c ' Name:' "$T/state.after") threads"

# every thread checks itself again after the restore
for n in main t1 t2 c1; do
	wait_for 10 "'ok $n' after the restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok $n '"
done
sleep 0.5
grep '^bad' "$LOG" && fail "the workload saw its state change across dump and restore"
assert_tree_running "$PS"
[[ $(awk '{print $3}' "/proc/$CHILD/task/$STRICT/stat") == R ]] || log "strict thread state: $(awk '{print $3}' "/proc/$CHILD/task/$STRICT/stat")"

# the child exits: its child is orphaned, adopted and reaped by main (the subreaper)
touch "$ORPHAN"
wait_grep "$LOG" "^adopted $GRANDCHILD by $PS\$" 10
wait_grep "$LOG" "^reaped $GRANDCHILD\$" 10
wait_grep "$LOG" "^reaped $CHILD\$" 10
grep '^bad' "$LOG" && fail "the workload saw its state change"
assert_running "$PS"
pass
