#!/bin/bash
# SPDX-License-Identifier: MIT
# A deleted file bigger than an image record (64 MiB), mostly holes, open
# through two open file descriptions (O_RDWR and O_RDONLY, each with its own
# position): dumped with its data only (the holes are not in the images),
# restored unnamed in its directory as one file with two descriptions (a
# write through one is seen through the other), positions, size, data and
# holes equal (the program checks every 100 ms), nothing appearing in the
# directory; twice, so the restored file goes through a dump again.
. "$(dirname "$0")/lib.sh"

D=$T/dir LOG=$T/delbig.log
mkdir -p "$D"
diag_add "$LOG"

start_workload W "$T/ready" -- "$WL/delbig" "$D" "$LOG" "$T/ready"
wait_lines "$LOG" 2
grep FAIL "$LOG" && fail "the workload failed before the dump"
[[ -z $(ls -A "$D") ]] || fail "$D is not empty: $(ls -A "$D")"
tree_snapshot "$W" >"$T/tree.before"

for round in 1 2; do
	ckpt_dump "$W" "$T/img$round"
	assert_tree_gone "$W"
	bytes=$(du -sb "$T/img$round" | cut -f1)
	log "round $round: images $bytes bytes"
	((bytes < 16 << 20)) || fail "the images hold $bytes bytes: the holes were saved"
	lines=$(line_count "$LOG")
	ckpt_restore "$T/img$round"
	[[ $RESTORED_PID == "$W" ]] || fail "restored root pid $RESTORED_PID, dumped $W"
	assert_same_tree "$T/tree.before" "$W"
	wait_lines "$LOG" $((lines + 3)) 15
	grep FAIL "$LOG" && fail "round $round: the program found a difference after restore"
	[[ -z $(ls -A "$D") ]] || fail "files appeared in $D: $(ls -A "$D")"
	[[ $(stat -L -c %i /proc/"$W"/fd/20) == $(stat -L -c %i /proc/"$W"/fd/21) ]] ||
		fail "fds 20 and 21 are no longer one file"
	log "round $round: $(readlink /proc/"$W"/fd/20), $(stat -L -c '%s bytes, %b blocks' /proc/"$W"/fd/20)"
done
pass
