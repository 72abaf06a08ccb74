#!/bin/bash
# SPDX-License-Identifier: MIT
# A restore that ckptd runs for an ordinary user holds capabilities only
# around the calls that need them (docs/security.md, lib/caps.h): neither
# ckpt-restore nor the tasks it makes have any in their effective set while
# the stages work, though the stages from memory to resume drive the tasks
# by ptrace and remote calls. Read from /proc while the restore is paused
# (CKPT_PAUSE) at stage memory (ckpt-restore and the new root task), after
# it (the task's threads) and at the commit point in stage resume
# (ckpt-restore). What the user's program
# set for itself and which needs a privilege to put back comes back the
# same (tests/workloads/userstate.c: a seccomp filter, a locked page,
# oom_score_adj, a second thread), and the program goes on as the user.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

ckptd_user_add UID_A ckpt-caps-a
chmod 0711 "$T"
install -d -m 0755 "$T/bin"
install -m 0755 "$WL/userstate" "$T/bin/userstate"
mkdir -m 0700 "$T/a" && chown ckpt-caps-a: "$T/a"
LOG=$T/a/us.log
diag_add "$LOG" "$T/r.err"

# start_workload's stdout and stderr files: the user's, so that the user's
# restore may open them again
touch "$T/P.stdout" "$T/P.stderr" && chown ckpt-caps-a: "$T/P.stdout" "$T/P.stderr"
cd "$T/a" || fail "cd $T/a"
start_workload P "$T/a/us.ready" -- setpriv --reuid=ckpt-caps-a --regid="$(id -g ckpt-caps-a)" \
	--clear-groups --inh-caps=-all -- "$T/bin/userstate" "$LOG" "$T/a/us.ready"
wait_lines "$LOG" 3 20
grep -q '^bad' "$LOG" && fail "userstate: $(grep '^bad' "$LOG" | head -n 3)"
tree_snapshot "$P" >"$T/tree.before"
mkdir -m 0700 "$T/a/ck" && chown ckpt-caps-a: "$T/a/ck"
start_ckptd
user_ckptctl ckpt-caps-a dump "$P" -D "$T/a/ck" --json || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$P"
stop_ckptd

cap_eff() { awk '/^CapEff:/ {print $2}' "/proc/$1/status"; }
restorer_pid() { pgrep -x ckpt-restore -u ckpt-caps-a | head -n 1; }

# restore_paused STEP CHECK: the user's restore through a ckptd whose
# restores pause at STEP; CHECK runs while paused; the restore must then
# succeed and the program carry on with its state
restore_paused()
{
	local step=$1 check=$2 go=$T/a/go.$1 n # (made by the user's ckpt-restore)
	rm -f "$T/a/ck/restore.log"
	CKPT_PAUSE=$step:$go start_ckptd
	as_user ckpt-caps-a "$CKPT_BUILD/ckptctl" restore "$T/a/ck" --json \
		>"$T/r.out" 2>"$T/r.err" &
	local rpid=$!
	wait_for 60 "the restore to pause at $step" eval "[[ -e $go.paused ]] || ! kill -0 $rpid"
	[[ -e $go.paused ]] || fail "the user's restore ended before $step: $(cat "$T/r.err")"
	$check
	touch "$go"
	wait "$rpid" || fail "the user's restore paused at $step failed: $(cat "$T/r.err")"
	[[ $(json_get "$T/r.out" root_pid) == "$P" ]] || fail "restored $(cat "$T/r.out")"
	TRACKED+=("$P")
	assert_same_tree "$T/tree.before" "$P"
	read -r _ ruid _ < <(grep '^Uid:' "/proc/$P/status")
	[[ $ruid == "$UID_A" ]] || fail "the restored program runs as uid $ruid"
	[[ $(cap_eff "$P") == 0000000000000000 ]] || fail "the restored program has capabilities"
	n=$(line_count "$LOG")
	wait_lines "$LOG" $((n + 3)) 20
	grep -q '^bad' "$LOG" && fail "after the restore: $(grep '^bad' "$LOG" | head -n 3)"
	log "restore paused at $step: the program goes on ($(tail -n 1 "$LOG"))"
	kill_tree "$P"
	assert_tree_gone "$P"
	stop_ckptd
}

# at stage memory: the tasks exist, P has made them; nobody holds an
# effective capability (before, each task raised all of them here)
at_memory()
{
	local r
	r=$(restorer_pid)
	[[ -n $r ]] || fail "no ckpt-restore of the user's"
	[[ $(cap_eff "$r") == 0000000000000000 ]] ||
		fail "ckpt-restore's effective set at stage memory: $(cap_eff "$r")"
	[[ $(cap_eff "$P") == 0000000000000000 ]] ||
		fail "the new task $P's effective set at stage memory: $(cap_eff "$P")"
	log "at stage memory: ckpt-restore $r and task $P have an empty effective set"
}
# after stage memory (the pager's stage comes next): P has seized the
# threads, and emptied the effective set they were made with (clone3 with
# set_tid needs one in the task)
at_pager()
{
	local tid n=0
	for tid in $(ls "/proc/$P/task"); do
		[[ $(cap_eff "$P/task/$tid") == 0000000000000000 ]] ||
			fail "thread $tid's effective set after stage memory: $(cap_eff "$P/task/$tid")"
		n=$((n + 1))
	done
	((n == 2)) || fail "task $P has $n threads, not 2"
	log "after stage memory: both threads of $P have an empty effective set"
}
# at the commit point, within stage resume (before, the whole stage ran
# with the restorer's capabilities raised)
at_commit()
{
	local r
	r=$(restorer_pid)
	[[ -n $r ]] || fail "no ckpt-restore of the user's"
	[[ $(cap_eff "$r") == 0000000000000000 ]] ||
		fail "ckpt-restore's effective set in stage resume: $(cap_eff "$r")"
	log "in stage resume: ckpt-restore $r has an empty effective set"
}

restore_paused restore-memory at_memory
restore_paused restore-pager at_pager
restore_paused restorer-committed at_commit
pass
