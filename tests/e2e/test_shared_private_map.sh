#!/bin/bash
# SPDX-License-Identifier: MIT
# One file mapped both MAP_SHARED writable (at the lower address) and
# MAP_PRIVATE (tests/workloads/sharedpriv.c): the dump used to give the
# private area the shared memory object of the shared one, and its own
# check then refused the images ("is not a regular file"). Dumped
# (--leave-running and killing) and restored: the private copy stays the
# program's, its untouched page still shows what the shared mapping
# writes, and the file is the same file.
. "$(dirname "$0")/lib.sh"

D=$T/data
mkdir -p "$D"
diag_add "$T/log"
start_workload S "$T/ready" -- "$WL/sharedpriv" "$D/file" "$T/log" "$T/ready"
wait_lines "$T/log" 3 20
grep FAIL "$T/log" && fail "sharedpriv failed before the dump"
ckpt_dump "$S" "$T/lr" --leave-running
n=$(line_count "$T/log")
wait_lines "$T/log" $((n + 3)) 20
ckpt_dump "$S" "$T/img"
assert_tree_gone "$S"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$S" ]] || fail "restored $RESTORED_PID, dumped $S"
n=$(line_count "$T/log")
wait_lines "$T/log" $((n + 5)) 20
assert_running "$S"
grep FAIL "$T/log" && fail "sharedpriv found a difference after the restore"
grep -q "^200000000-200004000 rw-s .*$D/file" /proc/"$S"/maps ||
	fail "the shared area: $(grep "$D/file" /proc/"$S"/maps)"
grep -q "^300000000-300004000 rw-p .*$D/file" /proc/"$S"/maps ||
	fail "the private area: $(grep "$D/file" /proc/"$S"/maps)"
pass
