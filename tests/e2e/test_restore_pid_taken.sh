#!/bin/bash
# SPDX-License-Identifier: MIT
# (i) A pid of the tree is in use by another process at restore time: the
# restore fails naming the pid and the process ("in use by sleep"), leaves
# that process alone and nothing else behind; once the pid is free the
# restore works.
. "$(dirname "$0")/lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 16 "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 2
tree_snapshot "$MH" >"$T/tree.before"
ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
image_sums "$T/img" >"$T/sums.before"

# Make a `sleep` get exactly that pid: ns_last_pid is the pid last handed
# out; other processes on the machine may fork in between, so retry.
squatter=
for ((try = 0; try < 200; try++)); do
	echo $((MH - 1)) >/proc/sys/kernel/ns_last_pid
	sleep 1000 &
	disown $!
	if [[ $! == "$MH" ]]; then
		squatter=$!
		break
	fi
	kill -KILL $! 2>/dev/null
done
[[ -n $squatter ]] || fail "could not start a process with pid $MH (after $try tries)"
log "pid $MH now belongs to sleep (after $((try + 1)) tries)"

if ckptctl_run restore "$T/img" --json; then
	fail "restore succeeded although pid $MH is in use"
fi
log "refused: $(cat "$ERR")"
grep -qw -- "$MH" "$ERR" || fail "error does not name pid $MH"
grep -q 'sleep' "$ERR" || fail "error does not name the process using the pid (sleep)"
proc_stat "$MH" && [[ $S_COMM == sleep && $S_STATE != Z ]] || fail "the sleep holding pid $MH was disturbed"
image_sums "$T/img" | diff -u "$T/sums.before" - || fail "the failed restore changed the images"
poll_for 3 no_stray_restorer || fail "a ckpt-restore process is still running"

kill -KILL "$squatter"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$MH"
wait_lines "$LOG" $((lines + 3)) 15
last=$(check_memhog_log "$LOG") || fail "after restore: $last"
pass
