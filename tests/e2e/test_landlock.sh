#!/bin/bash
# SPDX-License-Identifier: MIT
# A program confined by Landlock (tests/workloads/landlock.c: creating
# files is allowed beneath one directory only) cannot be restored exactly:
# no call reads a domain back, and only the thread it confines can make
# one. Before the fix the dump succeeded and the restored program ran
# unconfined (its file creation in the denied directory worked: "bad ...
# created"). Now the dump refuses it, naming the pid and the confined
# thread, whether the whole process is confined or one thread of it, as
# root or as the user through ckptd, and leaves it running confined. Without
# the kernel reader (CKPT_FAULT=kread-none) a thread with no_new_privs is
# refused. A program that is not confined dumps and restores as before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

abi=$("$PYTHON" -c 'import ctypes; print(ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1))')
((abi > 0)) || fail "this kernel does not run Landlock (landlock_create_ruleset: $abi)"
log "Landlock ABI $abi"

# start MODE: the workload confined as MODE (process|thread|none) in $T/MODE;
# its pid in P, the tid of its thread NAME in TID_NAME
start()
{
	local mode=$1 d=$T/$1
	mkdir -p "$d/allowed" "$d/denied"
	diag_add "$d/log"
	start_workload P "$d/allowed/ready" -- "$WL/landlock" "$d/log" "$d/allowed/ready" "$mode" "$d"
	wait_grep "$d/log" '^ok main 1$' 10
	wait_grep "$d/log" '^ok worker 1$' 10
	TID_main=$(awk '$1 == "start" && $2 == "main" { print $3 }' "$d/log")
	TID_worker=$(awk '$1 == "start" && $2 == "worker" { print $3 }' "$d/log")
	LOG=$d/log
}

# carries_on LINES WHAT: both threads logged "ok" after line LINES, none "bad"
carries_on()
{
	local n
	for n in main worker; do
		wait_grep_after "$LOG" "$1" "^ok $n "
	done
	proc_stat "$P" && [[ $S_STATE != Z && $S_STATE != T && $S_STATE != t ]] ||
		fail "$2: the program is not running"
	grep '^bad' "$LOG" && fail "$2: a thread's confinement changed"
	return 0
}

# refused THREAD ARGS...: the dump (ckptctl ARGS) fails naming pid and THREAD
refused()
{
	local tid=$1 lines
	shift
	lines=$(line_count "$LOG")
	ckptctl_run dump "$P" -D "$T/img" "$@" && fail "dump $*: a confined program was dumped"
	grep -qF "pid $P: thread $tid is confined by Landlock" "$ERR" ||
		fail "dump $*: the error does not name pid $P and thread $tid: $(cat "$ERR")"
	[[ -e $T/img ]] && fail "dump $*: the refused dump left $T/img"
	carries_on "$lines" "the refused dump $*"
	assert_same_tree "$T/tree.before" "$P"
}

start process
grep -qE "^start main [0-9]+ confined$" "$LOG" && grep -qE "^start worker [0-9]+ confined$" "$LOG" ||
	fail "the workload is not confined: $(grep '^start' "$LOG")"
tree_snapshot "$P" >"$T/tree.before"
refused "$TID_main"
refused "$TID_main" --leave-running
# without the kernel reader: its threads have no_new_privs
CKPT_FAULT=kread-none ckptctl_run dump "$P" -D "$T/img" && fail "kread-none: a confined program was dumped"
grep -qF "pid $P: thread $TID_main has no_new_privs set and may be confined by Landlock" "$ERR" ||
	fail "kread-none: not refused for its no_new_privs: $(cat "$ERR")"
carries_on 0 "the refused dump without a reader"
kill_tree "$P"

# one thread confined, not the main one
start thread
grep -qE "^start main [0-9]+ free$" "$LOG" && grep -qE "^start worker [0-9]+ confined$" "$LOG" ||
	fail "the workload's worker alone is not confined: $(grep '^start' "$LOG")"
tree_snapshot "$P" >"$T/tree.before"
refused "$TID_worker"
CKPT_FAULT=kread-none ckptctl_run dump "$P" -D "$T/img" && fail "kread-none: a confined thread was dumped"
grep -qF "pid $P: thread $TID_worker has no_new_privs set" "$ERR" ||
	fail "kread-none: the worker was not refused for its no_new_privs: $(cat "$ERR")"
kill_tree "$P"

# not confined: dumped and restored, each thread still free
start none
tree_snapshot "$P" >"$T/tree.before"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
assert_same_tree "$T/tree.before" "$P"
carries_on "$lines" "the restore"
kill_tree "$P"

# a user's sandboxed program, dumped by the user through ckptd
ckptd_user_add AUID ckpt-landlock-a
chmod 0711 "$T"
LANDLOCK=$(user_copy "$WL/landlock")
mkdir -m 0700 "$T/u" && chown ckpt-landlock-a: "$T/u"
mkdir -p "$T/u/allowed" "$T/u/denied" && chown ckpt-landlock-a: "$T/u/allowed" "$T/u/denied"
start_ckptd
touch "$T/u/out" "$T/U.stderr" && chown ckpt-landlock-a: "$T/u/out" "$T/U.stderr"
start_workload U "$T/u/allowed/ready" --stdout "$T/u/out" -- setpriv --reuid=ckpt-landlock-a \
	--regid="$(id -g ckpt-landlock-a)" --clear-groups --inh-caps=-all -- "$LANDLOCK" "$T/u/log" "$T/u/allowed/ready" process "$T/u"
wait_grep "$T/u/log" '^ok worker 1$' 10
mkdir -m 0700 "$T/u/img" && chown ckpt-landlock-a: "$T/u/img"
user_ckptctl ckpt-landlock-a dump "$U" -D "$T/u/img/c" && fail "the user's confined program was dumped"
grep -qF "pid $U: thread $U is confined by Landlock" "$ERR" ||
	fail "the user's dump: the error does not name pid $U: $(cat "$ERR")"
lines=$(line_count "$T/u/log")
wait_lines "$T/u/log" $((lines + 2)) 10
grep '^bad' "$T/u/log" && fail "the user's program: its confinement changed"
kill_tree "$U"
pass
