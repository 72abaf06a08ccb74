#!/bin/bash
# SPDX-License-Identifier: MIT
# Multi-threaded processes (tests/workloads/threads.c): 8 threads over a
# structure shared under a mutex, dumped with threads blocked in
# pthread_cond_wait, pthread_mutex_lock, nanosleep, poll, pthread_join and
# a busy loop. After restore every thread runs again with its TID, its TLS
# counter, name, sigaltstack and robust list, and the invariants hold.
# Then a tree of two processes with threads each, python3 threads, and a
# threaded process dumped and restored through ckptd.
. "$(dirname "$0")/lib.sh"

# persistent thread tids of the process: from the "start PID NAME TID"
# lines (the joiner's short-lived threads come and go, they are not there)
thread_tids() { awk -v p="$2" '$1 == "start" && $2 == p { print $4 }' "$1" | sort -n; }

# verify LOG: per (pid, thread) the TLS counter goes up by one per line; no BAD
verify_log()
{
	local log=$1
	grep -n BAD "$log" && fail "a thread reported a broken invariant or state"
	awk '$1 != "start" { k = $1 " " $2; if ($4 != s[k] + 1) { print "line " NR ": " $0 " (expected " s[k] + 1 ")"; bad = 1 } s[k] = $4 }
	     END { exit bad }' "$log" || fail "a thread's counter has a gap or reset"
}

# check_threads LOG PID: every persistent thread is still there, same tid and name
check_threads()
{
	local log=$1 pid=$2 tid name want
	for tid in $(thread_tids "$log" "$pid"); do
		[[ -d /proc/$pid/task/$tid ]] || fail "pid $pid: thread $tid is gone after restore"
		name=$(<"/proc/$pid/task/$tid/comm")
		want=$(awk -v p="$pid" -v t="$tid" '$1 == "start" && $2 == p && $4 == t { print $3 }' "$log")
		[[ $name == "$want" ]] || fail "pid $pid: thread $tid is called '$name', was '$want'"
	done
}

# progressed LOG PID NAME N: thread NAME of PID logged N more lines than now
count_of() { awk -v p="$2" -v n="$3" '$1 == p && $2 == n' "$1" | wc -l; }

run_case()
{
	local name=$1 nproc=$2 log=$T/$1.log pid pids p n tname
	diag_add "$log"
	start_workload ROOT "$T/$name.ready" -- "$WL/threads" "$log" "$T/$name.ready" "$nproc"
	pid=$ROOT
	wait_for 10 "every thread of $nproc processes to start" \
		eval '(($(grep -c "^start" "$log") == 9 * nproc))'
	wait_grep "$log" " join [0-9]+ 2 joined" 10
	pids=$(awk '$1 == "start" && $3 == "main" { print $2 }' "$log" | sort -n)
	for p in $pids; do
		ls "/proc/$p/task" | sort -n >"$T/$name.$p.tasks"
		(($(wc -l <"$T/$name.$p.tasks") >= 9)) || fail "pid $p has fewer than 9 threads"
	done
	tree_snapshot "$pid" >"$T/$name.tree"
	log "$name: threads of $pid blocked in: $(for f in /proc/"$pid"/task/*/wchan; do printf '%s ' "$(<"$f")"; done)"
	if [[ $name == one ]]; then
		# a failed dump and a --leave-running dump resume every thread
		local step
		for step in dump-seize dump-collect dump-memory; do
			CKPT_FAULT=$step ckptctl_run dump "$pid" -D "$T/$name.$step.img" &&
				fail "$step: dump succeeded despite CKPT_FAULT=$step"
			log "$step: refused: $(head -c 200 "$ERR")"
		done
		ckpt_dump "$pid" "$T/$name.lr.img" --leave-running
		for tname in main w0 w1 w2 cond sleep busy join; do
			n=$(count_of "$log" "$pid" "$tname")
			wait_for 10 "thread $tname to log again after the dumps that left it running" \
				eval '(($(count_of "$log" "$pid" "$tname") >= n + 1))'
		done
		ls "/proc/$pid/task" | sort -n >"$T/$name.$pid.tasks"
	fi
	ckpt_dump "$pid" "$T/$name.img"
	assert_tree_gone "$pid"
	verify_log "$log"
	cp "$log" "$T/$name.log.dumped"
	if [[ $name == two ]]; then
		# a failed restore kills every thread it made, and a later one works
		local step all
		all=$(cat "$T/$name".*.tasks)
		for step in restore-task-setup restore-memory restore-signals restore-resume; do
			if CKPT_FAULT=$step ckptctl_run restore "$T/$name.img"; then
				fail "$step: restore succeeded despite CKPT_FAULT=$step"
			fi
			# shellcheck disable=SC2086
			assert_gone $all
			log "$step: failed cleanly, no thread left"
		done
		# the batches of several threads run at the same time: one refused
		# call in the third thread's fails the restore naming it, and
		# every thread is gone (those whose batches ran around it too)
		if CKPT_FAULT=rqueue-thread-einval ckptctl_run restore "$T/$name.img"; then
			fail "rqueue-thread-einval: restore succeeded despite a refused prctl"
		fi
		grep -qE "thread [0-9]+: pid [0-9]+: prctl\(PR_SET_PDEATHSIG, 1000\): Invalid argument" "$ERR" ||
			fail "rqueue-thread-einval: error does not name the thread and the call: $(cat "$ERR")"
		# shellcheck disable=SC2086
		assert_gone $all
		log "rqueue-thread-einval: $(head -c 200 "$ERR")"
	fi
	ckpt_restore "$T/$name.img"
	[[ $RESTORED_PID == "$pid" ]] || fail "$name: restored root pid $RESTORED_PID, dumped $pid"
	assert_same_tree "$T/$name.tree" "$pid"
	for p in $pids; do
		check_threads "$log" "$p"
		for tname in main w0 w1 w2 cond sleep busy join; do
			# shellcheck disable=SC2034 # used in the eval below
			n=$(count_of "$T/$name.log.dumped" "$p" "$tname")
			wait_for 10 "pid $p thread $tname to log again" \
				eval '(($(count_of "$log" "$p" "$tname") >= n + 2))'
		done
	done
	assert_tree_running "$pid"
	verify_log "$log"
	log "$name: $(wc -l <"$log") lines, every thread of $(echo "$pids" | wc -w) process(es) continued"
	kill_tree "$pid"
	untrack "$pid"
	if [[ $name == one ]]; then
		# the checkpoint the --leave-running dump wrote restores every thread
		assert_gone "$pid"
		ckpt_restore "$T/$name.lr.img"
		[[ $RESTORED_PID == "$pid" ]] || fail "$name: restored root pid $RESTORED_PID, dumped $pid"
		# (the join thread is made again and again: compare the count)
		ls "/proc/$pid/task" | sort -n >"$T/$name.lr.tasks"
		(($(wc -l <"$T/$name.lr.tasks") == $(wc -l <"$T/$name.$pid.tasks"))) ||
			fail "the restore of the --leave-running dump has $(wc -l <"$T/$name.lr.tasks") threads, not $(wc -l <"$T/$name.$pid.tasks")"
		check_threads "$log" "$pid"
		assert_tree_running "$pid"
		log "$name: the --leave-running checkpoint restored $(wc -l <"$T/$name.lr.tasks") threads"
		kill_tree "$pid"
		untrack "$pid"
	fi
}

run_case one 1
run_case two 2

# --- python3 threading ------------------------------------------------------
PLOG=$T/py.log
diag_add "$PLOG"
start_workload PY "$T/py.ready" -- "$PYTHON" "$WLSRC/pythreads.py" "$PLOG" "$T/py.ready"
wait_lines "$PLOG" 30
ls "/proc/$PY/task" | sort -n >"$T/py.tasks.before"
(($(wc -l <"$T/py.tasks.before") == 5)) || fail "python: expected 5 threads, got $(wc -l <"$T/py.tasks.before")"
ckpt_dump "$PY" "$T/py.img"
assert_tree_gone "$PY"
lines=$(line_count "$PLOG")
"$PYTHON" "$WLSRC/pythreads.py" --verify "$PLOG" >/dev/null || fail "python log bad before restore"
ckpt_restore "$T/py.img"
[[ $RESTORED_PID == "$PY" ]] || fail "python: restored pid $RESTORED_PID, dumped $PY"
ls "/proc/$PY/task" | sort -n >"$T/py.tasks.after"
diff -u "$T/py.tasks.before" "$T/py.tasks.after" || fail "python: threads differ after restore"
wait_lines "$PLOG" $((lines + 40)) 20
for who in main worker waiter sleeper busy; do
	wait_for 10 "python thread $who to log again" \
		eval '(($(tail -n +$((lines + 1)) "$PLOG" | grep -c "^$who ") >= 1))'
done
assert_running "$PY"
out=$("$PYTHON" "$WLSRC/pythreads.py" --verify "$PLOG") || fail "python: output has a gap or reset: $out"
log "python: $out"
kill_tree "$PY"

# --- the same through ckptd (the daemon dumps from its worker) ----------------
. "$(dirname "$0")/ckptd_lib.sh"
start_ckptd
run_case daemon 1
[[ -s $T/daemon.img/dump.log ]] || fail "ckptd: no dump.log in the image directory"
stop_ckptd
pass
