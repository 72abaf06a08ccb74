#!/bin/bash
# SPDX-License-Identifier: MIT
# Every dump step forced to fail (CKPT_FAULT=<step>) leaves the program
# running exactly as it was: ckptctl exits non-zero naming the step, the
# task is neither stopped nor traced, its memory and counter are intact, no
# temporary directory is left. The restorer's verifier, run by the dump on
# what it wrote, refusing the images fails the dump the same way.
# Afterwards a real dump and restore still work.
. "$(dirname "$0")/lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 32 "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 3
tree_snapshot "$MH" >"$T/tree.before"
STEPS=$(fault_steps dump)
log "dump fault steps: $STEPS"

for step in $STEPS; do
	# reached only after a try that the program's own progress may clear:
	# test_tcp_accept fails it with a connection not yet accepted
	[[ $step == dump-retry ]] && continue
	dir=$T/$step.img
	if CKPT_FAULT=$step ckptctl_run dump "$MH" -D "$dir"; then
		fail "$step: dump succeeded despite CKPT_FAULT=$step"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: error does not name the step: $(cat "$ERR")"
	assert_running "$MH"
	assert_same_tree "$T/tree.before" "$MH"
	case $step in
	dump-commit | dump-finish) ;; # the images may be complete by then
	*) [[ ! -e $dir/inventory.img ]] || fail "$step: a failed dump left a checkpoint in $dir" ;;
	esac
	compgen -G "$dir.tmp*" >/dev/null && fail "$step: temporary directory left: $(echo "$dir".tmp*)"
	lines=$(line_count "$LOG")
	wait_lines "$LOG" $((lines + 2)) 10
	last=$(check_memhog_log "$LOG") || fail "$step: program damaged: $last"
	grep -n CORRUPT "$LOG" && fail "$step: memory corrupted"
	log "$step: refused, program intact at iteration $last"
done

# The restorer's own verifier runs on every checkpoint before the dump
# calls it good: a verdict against it fails the dump, the tree running.
for step in restore-verify restore-plan; do
	dir=$T/$step.img
	if CKPT_FAULT=$step ckptctl_run dump "$MH" -D "$dir"; then
		fail "dump succeeded although the restorer's $step refused the images"
	fi
	grep -q "the restore would refuse these images: .*$step" "$ERR" ||
		fail "$step: unexpected error: $(cat "$ERR")"
	assert_running "$MH"
	assert_same_tree "$T/tree.before" "$MH"
	[[ ! -e $dir/inventory.img ]] || fail "$step: a refused checkpoint was left in $dir"
	compgen -G "$dir.tmp*" >/dev/null && fail "$step: temporary directory left: $(echo "$dir".tmp*)"
	log "$step: the dump's own check refused it, program running"
done

ckpt_dump "$MH" "$T/final.img"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
ckpt_restore "$T/final.img"
assert_same_tree "$T/tree.before" "$MH"
wait_lines "$LOG" $((lines + 3)) 15
last=$(check_memhog_log "$LOG") || fail "after the final restore: $last"
pass
