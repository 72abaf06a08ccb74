#!/bin/bash
# SPDX-License-Identifier: MIT
# Processes sharing one fd table (clone(CLONE_FILES) without CLONE_THREAD,
# tests/workloads/fidelity.c clonefiles) come back sharing one table: the
# child is made with clone3(CLONE_FILES) and one of them installs the fds.
# After restore they list the same fds, a file the child opens appears in
# the parent's table and a close by the parent closes it in the child's.
# Also a chain (a grandchild in the same table), and a child sharing its
# parent's cwd, root and umask (CLONE_FS): a chdir and umask by the child
# after restore are the parent's too. Refused at dump, naming the pids, the
# tree left running: two children sharing a table their parent left, a
# thread with an fd table of its own.
. "$(dirname "$0")/lib.sh"

run_case()
{
	local how=$1 log=$T/cf$1.log ready=$T/cf$1.ready kid gkid= lines p
	diag_add "$log"
	start_workload C "$ready" -- "$WL/fidelity" clonefiles "$log" "$ready" $how
	read -r _ kid _ <<<"$(grep '^child ' "$log")"
	wait_grep "$log" '^ok main 1$'
	wait_grep "$log" '^ok child 1$'
	if [[ $how == chain ]]; then
		wait_grep "$log" '^ok grandchild 1$'
		read -r gkid _ <"/proc/$kid/task/$kid/children"
		[[ -n $gkid ]] || fail "no grandchild"
	fi
	ckpt_dump "$C" "$T/img$how"
	assert_gone "$C" "$kid" $gkid
	ckpt_restore "$T/img$how"
	[[ $RESTORED_PID == "$C" ]] || fail "restored as pid $RESTORED_PID, not $C"
	[[ $(awk '/^PPid:/ {print $2}' "/proc/$kid/status") == "$C" ]] || fail "pid $kid is not the child of $C after restore"
	lines=$(line_count "$log")
	wait_for 10 "'ok main' after restore" eval "tail -n +$((lines + 1)) '$log' | grep -q '^ok main '"
	wait_for 10 "'ok child' after restore" eval "tail -n +$((lines + 1)) '$log' | grep -q '^ok child '"
	for p in "$kid" $gkid; do
		[[ "$(ls "/proc/$C/fd")" == "$(ls "/proc/$p/fd")" ]] ||
			fail "pids $C and $p list different fds: $(ls "/proc/$C/fd" | tr '\n' ' ') / $(ls "/proc/$p/fd" | tr '\n' ' ')"
	done
	if [[ $how == chain ]]; then
		[[ $(awk '/^PPid:/ {print $2}' "/proc/$gkid/status") == "$kid" ]] || fail "pid $gkid is not the child of $kid after restore"
		wait_for 10 "'ok grandchild' after restore" eval "tail -n +$((lines + 1)) '$log' | grep -q '^ok grandchild '"
	fi
	# one table: what one opens the other has, what one closes the other loses
	touch "$ready.open"
	wait_grep "$log" '^child opened [0-9]+$'
	wait_grep "$log" '^main sees [0-9]+$'
	[[ $(awk '$2 == "opened" {print $3}' "$log") == $(awk '$2 == "sees" {print $3}' "$log") ]] ||
		fail "the parent found another fd than the one the child opened"
	if [[ $how == chain ]]; then
		ls -l "/proc/$gkid/fd" | grep -q /dev/zero || fail "the grandchild's table does not have the file the child opened"
	fi
	touch "$ready.close"
	wait_grep "$log" '^main closed [0-9]+$'
	wait_grep "$log" '^child sees [0-9]+ closed$'
	grep '^bad' "$log" && fail "the workload saw a change"
	kill_tree "$C"
	log "clonefiles $how: one table after restore"
}

# CLONE_FS: one cwd, root and umask after restore (a chdir and umask by the
# child are seen by the parent)
fs_case()
{
	local log=$T/cffs.log ready=$T/cffs.ready kid lines
	diag_add "$log"
	start_workload C "$ready" -- "$WL/fidelity" clonefiles "$log" "$ready" fs
	read -r _ kid _ <<<"$(grep '^child ' "$log")"
	wait_grep "$log" '^ok main 1$'
	wait_grep "$log" '^ok child 1$'
	ckpt_dump "$C" "$T/imgfs"
	assert_gone "$C" "$kid"
	ckpt_restore "$T/imgfs"
	lines=$(line_count "$log")
	wait_for 10 "'ok main' after restore" eval "tail -n +$((lines + 1)) '$log' | grep -q '^ok main '"
	wait_for 10 "'ok child' after restore" eval "tail -n +$((lines + 1)) '$log' | grep -q '^ok child '"
	[[ $(readlink "/proc/$C/cwd") == "$(readlink "/proc/$kid/cwd")" && $(readlink "/proc/$C/cwd") == "$PWD" ]] ||
		fail "cwd after restore: $(readlink "/proc/$C/cwd") / $(readlink "/proc/$kid/cwd"), was $PWD"
	touch "$ready.open"
	wait_grep "$log" '^child chdir$'
	wait_grep "$log" '^main sees cwd / umask 027$'
	grep '^bad' "$log" && fail "the workload saw a change"
	kill_tree "$C"
	log "clonefiles fs: one cwd and umask after restore"
}

refused_case()
{
	local how=$1 want=$2 log=$T/cf$1.log ready=$T/cf$1.ready lines
	diag_add "$log"
	start_workload C "$ready" -- "$WL/fidelity" clonefiles "$log" "$ready" "$how"
	wait_grep "$log" '^ok main 1$'
	ckptctl_run dump "$C" -D "$T/img$how" && fail "$how: dump succeeded"
	grep -qE "$want" "$ERR" || fail "$how: unexpected error: $(cat "$ERR")"
	[[ ! -e $T/img$how ]] || fail "a refused dump left $T/img$how"
	lines=$(line_count "$log")
	wait_for 10 "'ok main' after the refused dump" eval "tail -n +$((lines + 1)) '$log' | grep -q '^ok main '"
	assert_tree_running "$C"
	kill_tree "$C"
	log "clonefiles $how: refused: $(head -c 300 "$ERR")"
}

run_case ""
run_case chain
fs_case
refused_case siblings "pid [0-9]+ shares its file descriptor table with pid [0-9]+, but not with its parent [0-9]+"
refused_case thread "pid [0-9]+: thread [0-9]+ has an fd table of its own \(unshare\(CLONE_FILES\)\)"
pass
