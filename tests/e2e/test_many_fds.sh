#!/bin/bash
# SPDX-License-Identifier: MIT
# A process holding 19,000 fds under a hard RLIMIT_NOFILE of 20,000 (no
# CAP_SYS_RESOURCE: nobody here may raise it), its files at the highest
# numbers the limit allows (fd 19999 down to 1008), each its own open file
# description at its own offset, plus four pipes. The restorer cannot keep
# fds of its own above the tree's: it makes each description right at its
# number and keeps its own in the numbers no task uses (restorer/fds.c).
# The program checks every fd (inode, offset) itself after the restore.
. "$(dirname "$0")/lib.sh"

ulimit -Hn 20000 || fail "cannot set the hard RLIMIT_NOFILE to 20000"
ulimit -Sn 20000
NFDS=19000
echo "a file opened $NFDS times" >"$T/shared.txt"
head -c 8192 /dev/urandom >>"$T/shared.txt"
diag_add "$T/log"
start_workload M "$T/ready" -- "$WL/manyfds" "$NFDS" "$T/shared.txt" "$T/log" "$T/ready"
wait_lines "$T/log" 2 60
grep FAIL "$T/log" && fail "manyfds failed before the dump"
n_fds_before=$(ls /proc/"$M"/fd | wc -l)
((n_fds_before >= NFDS)) || fail "manyfds holds $n_fds_before fds, not $NFDS"
[[ -e /proc/$M/fd/19999 ]] || fail "manyfds has no fd 19999"

ckpt_dump "$M" "$T/img"
assert_tree_gone "$M"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$M" ]] || fail "restored root pid $RESTORED_PID, dumped $M"
n=$(line_count "$T/log")
wait_lines "$T/log" $((n + 3)) 60
assert_running "$M"
grep FAIL "$T/log" && fail "manyfds found a difference after the restore"
after=$(ls /proc/"$M"/fd | wc -l)
((after == n_fds_before)) || fail "$after fds after the restore, $n_fds_before before"
grep -q "^Max open files  *20000  *20000" /proc/"$M"/limits ||
	fail "RLIMIT_NOFILE after the restore: $(grep 'open files' /proc/"$M"/limits)"
pass
