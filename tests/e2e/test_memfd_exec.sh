#!/bin/bash
# SPDX-License-Identifier: MIT
# A program that execs a memfd it made (tests/workloads/fidelity.c memfd,
# execveat(AT_EMPTY_PATH) of a copy of /bin/true, the memfd kept open
# read-write) can still exec it after restore: the restored fd must not
# count as a writer of the file (ETXTBSY), as memfd_create's own does not.
. "$(dirname "$0")/lib.sh"

LOG=$T/memfd.log
diag_add "$LOG"
start_workload M "$T/memfd.ready" -- "$WL/fidelity" memfd "$LOG" "$T/memfd.ready" /bin/true
wait_grep "$LOG" '^ok 1$'
grep -q '^bad' "$LOG" && fail "exec of the memfd failed before any dump: $(grep '^bad' "$LOG" | head -3)"
ckpt_dump "$M" "$T/img"
assert_tree_gone "$M"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
wait_for 10 "'ok' after the restore" eval "tail -n +$((lines + 1)) '$LOG' | grep -q '^ok '"
grep '^bad' "$LOG" && fail "exec of the memfd failed after restore: $(grep '^bad' "$LOG" | head -3)"
fd=$(awk '/^memfd fd/ {print $3}' "$LOG")
[[ $(readlink "/proc/$M/fd/$fd") == "/memfd:prog (deleted)" ]] || fail "fd $fd is $(readlink "/proc/$M/fd/$fd")"
grep -q '^flags:.*2$' "/proc/$M/fdinfo/$fd" || fail "fd $fd is not read-write: $(grep flags "/proc/$M/fdinfo/$fd")"
assert_tree_running "$M"
pass
