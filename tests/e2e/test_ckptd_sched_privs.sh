#!/bin/bash
# SPDX-License-Identifier: MIT
# A non-root caller's dump through ckptd refuses scheduling state its own
# restore (ckpt-restore as the caller, without capabilities) could not set
# again: a real-time I/O class, a real-time policy above the task's
# RLIMIT_RTPRIO, a nice value below what its RLIMIT_NICE allows, a negative
# nice of its session's autogroup (root gave them to the user's program). Each refusal names the pid, the thread and
# what it needs, and leaves the program running as it was. Before the fix
# such dumps exited 0 and the user's restore of them failed ("a dump never
# exits 0 for images its own restore would refuse"). What the user may set
# (best-effort class 7, nice 5) is dumped and comes back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

ckptd_user_add AUID ckpt-sched-a
chmod 0711 "$T"
SLEEPER=$(user_copy "$WL/sleeper")
mkdir -m 0700 "$T/a" && chown ckpt-sched-a: "$T/a"
start_ckptd
cd "$T/a" || fail "cd $T/a"
touch "$T/a/out" "$T/P.stderr" && chown ckpt-sched-a: "$T/a/out" "$T/P.stderr"
start_workload P "$T/a/p.ready" --stdout "$T/a/out" -- setpriv --reuid=ckpt-sched-a --regid="$(id -g ckpt-sched-a)" \
	--clear-groups --inh-caps=-all -- "$SLEEPER" nanosleep "$T/a/p.log" "$T/a/p.ready" 1
tree_snapshot "$P" >"$T/tree.before"
grep -E '^Max realtime priority|^Max nice priority' "/proc/$P/limits" | tr -s ' ' | tr '\n' ';' >"$T/limits"
log "the program's limits: $(cat "$T/limits")"

# refused SETUP UNDO REGEX: root applies SETUP to the program, the user's
# dump fails with REGEX (pid and thread named), the program runs on
# untouched, UNDO puts it back
n=0
refused()
{
	local setup=$1 undo=$2 re=$3 lines
	n=$((n + 1))
	eval "$setup" >/dev/null || fail "setup '$setup' failed"
	lines=$(line_count "$T/a/p.log")
	mkdir -m 0700 "$T/a/r$n" && chown ckpt-sched-a: "$T/a/r$n"
	if user_ckptctl ckpt-sched-a dump "$P" -D "$T/a/r$n"; then
		fail "'$setup': the user's dump succeeded (its restore could not set it again)"
	fi
	grep -qE -- "pid $P: $re" "$ERR" || fail "'$setup': no /pid $P: $re/ in: $(cat "$ERR")"
	log "'$setup': refused: $(head -n 1 "$ERR")"
	proc_stat "$P" && [[ $S_STATE != T && $S_STATE != t ]] || fail "'$setup': the program is not running after the refused dump"
	wait_lines "$T/a/p.log" $((lines + 1)) 10
	assert_same_tree "$T/tree.before" "$P"
	eval "$undo" >/dev/null || fail "undo '$undo' failed"
}

refused "ionice -c1 -n4 -p $P" "ionice -c0 -p $P" "thread $P: its real-time I/O class \(ionice -c1\) needs CAP_SYS_NICE or CAP_SYS_ADMIN"
refused "chrt -f -p 5 $P" "chrt -o -p 0 $P" "thread $P: its real-time policy SCHED_FIFO priority 5 needs CAP_SYS_NICE to be set again: its RLIMIT_RTPRIO allows 0"
refused "renice -n -5 -p $P" "renice -n 0 -p $P" "thread $P: its nice value -5 needs CAP_SYS_NICE"
# (the program leads its session: the autogroup is its own)
refused "echo -5 >/proc/$P/autogroup" "echo 0 >/proc/$P/autogroup" "its autogroup's nice value -5 \(/proc/PID/autogroup\) needs CAP_SYS_NICE"

# what the user may set itself comes back
ionice -c2 -n7 -p "$P" && renice -n 5 -p "$P" >/dev/null || fail "ionice/renice failed"
mkdir -m 0700 "$T/a/ok" && chown ckpt-sched-a: "$T/a/ok"
user_ckptctl ckpt-sched-a dump "$P" -D "$T/a/ok" || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$P"
user_ckptctl ckpt-sched-a restore "$T/a/ok" --json || fail "the user's restore failed: $(cat "$ERR")"
RESTORED_PID=$(json_get "$OUT" root_pid)
TRACKED+=("$RESTORED_PID")
[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
[[ $(ionice -p "$P") == "best-effort: prio 7" ]] || fail "restored I/O priority: $(ionice -p "$P")"
[[ $(ps -o ni= -p "$P" | tr -d ' ') == 5 ]] || fail "restored nice: $(ps -o ni= -p "$P")"
log "best-effort 7 and nice 5 came back"
kill_tree "$P"
pass
