#!/bin/bash
# SPDX-License-Identifier: MIT
# Every fault step of the fd kinds (lib/kinds: file-dump, chr-open, dir-verify...)
# forced to fail with the files workload, which holds every kind: a step
# that fails the dump must leave the program running and intact; a step the
# dump does not reach must fail the restore and leave nothing behind. Then
# the program is restored normally and must still pass its own checks.
. "$(dirname "$0")/lib.sh"

D=$T/files
mkdir -p "$D"
diag_add "$D/log.txt"
start_workload F "$D/ready" --stdout "$D/stdout.txt" -- "$WL/files" "$D"
wait_lines "$D/log.txt" 5
tree_snapshot "$F" >"$T/tree.before"
# The files workload holds no deleted file: test_deleted.sh covers deleted-*;
# nor pipes or FIFOs: test_pipes.sh covers pipe-* and fifo-*. test_ptypair.sh covers tty-*,
# test_unix.sh unix-*, test_evfd.sh eventfd-*, epoll-*, signalfd-*, timerfd-*, inotify-*,
# test_tcp.sh inet-*, test_pidfd.sh pidfd-*, test_netlink.sh netlink-*,
# test_symlink_fd.sh symlink-*, test_iouring.sh iouring-*, test_mqueue.sh mqueue-*;
# nor a removed directory: test_deleted_dir.sh covers dir-remade.
STEPS=$(fault_steps kinds | tr ' ' '\n' |
	grep -vE '^(deleted|pipe|fifo|tty|memfd|unix|eventfd|epoll|signalfd|timerfd|inotify|inet|pidfd|netlink|symlink|iouring|mqueue)-' |
	grep -vx dir-remade | tr '\n' ' ')
[[ -n $STEPS ]] || fail "no fault step found in lib/kinds"
log "fd kind fault steps: $STEPS"

# program_ok: the workload's own checks all passed, iterations continuous.
program_ok()
{
	grep -n FAIL "$D/log.txt" && fail "$1: the files workload found a difference"
	awk '$1 != "iter" || $2 != NR - 1 { print "log.txt:" NR ": " $0; bad = 1; exit } END { exit bad }' \
		"$D/log.txt" || fail "$1: log.txt not continuous"
}

for step in $STEPS; do
	dir=$T/$step.img
	if ! CKPT_FAULT=$step ckptctl_run dump "$F" -D "$dir"; then
		grep -q -- "$step" "$ERR" || fail "$step: dump error does not name the step: $(cat "$ERR")"
		assert_running "$F"
		[[ ! -e $dir/inventory.img ]] || fail "$step: a failed dump left a checkpoint"
		lines=$(line_count "$D/log.txt")
		wait_lines "$D/log.txt" $((lines + 3))
		program_ok "$step (dump)"
		log "$step: dump refused, program intact"
		continue
	fi
	# The dump does not use this step: the restore must.
	assert_tree_gone "$F"
	image_sums "$dir" >"$T/sums"
	if CKPT_FAULT=$step ckptctl_run restore "$dir" --json; then
		fail "$step: neither the dump nor the restore failed with CKPT_FAULT=$step"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	image_sums "$dir" | diff -u "$T/sums" - || fail "$step: the failed restore changed the images"
	lines=$(line_count "$D/log.txt")
	ckpt_restore "$dir"
	assert_same_tree "$T/tree.before" "$F"
	wait_lines "$D/log.txt" $((lines + 3))
	program_ok "$step (restore)"
	log "$step: restore refused and left nothing; a normal restore then worked"
done
assert_running "$F"
pass
