#!/bin/bash
# SPDX-License-Identifier: MIT
# A wide tree: python3 with 100 children, each holding 64 KiB of its own
# random bytes and a counter, answering its parent over pipes every 200 ms.
# Dumped (killing) and restored: every child at its pid under the same
# parent, its bytes and its counter as dumped, the parent's checks going on.
# From 64 tasks on the restorer puts its own memory in huge pages before
# it forks the tree (restorer/tree.c, huge_pages_for_forks): the tasks start
# as forks of it, and this is that path.
. "$(dirname "$0")/lib.sh"

N=100
D=$T/wide
mkdir -p "$D"
diag_add "$D/log"
start_workload ROOT "$D/ready" -- "$PYTHON" "$WLSRC/widetree.py" "$N" "$D/log" "$D/ready"
KIDS=$(sed -n 2p "$D/ready")
(($(wc -w <<<"$KIDS") == N)) || fail "$N children expected, ready says: $KIDS"
wait_lines "$D/log" 3 20
grep -q BAD "$D/log" && fail "the tree is wrong before the dump: $(grep -m1 BAD "$D/log")"

# shellcheck disable=SC2086
pids_snapshot "$ROOT" $KIDS >"$T/tree.before"
ckpt_dump "$ROOT" "$D/img"
# shellcheck disable=SC2086
assert_gone "$ROOT" $KIDS
before=$(line_count "$D/log")

ckpt_restore "$D/img" -vv
[[ $RESTORED_PID == "$ROOT" ]] || fail "restored root pid $RESTORED_PID, dumped $ROOT"
grep -q "MiB of our memory in huge pages for $((N + 1)) forks" "$ERR" ||
	fail "the restorer did not take the huge-page path for $((N + 1)) tasks"
# shellcheck disable=SC2086
assert_same_pids "$T/tree.before" "$ROOT" $KIDS
wait_lines "$D/log" $((before + 3)) 20
tail -n +$((before + 1)) "$D/log" | grep -m1 BAD && fail "after the restore: $(grep -m1 BAD "$D/log")"
log "$N children answered $(($(line_count "$D/log") - before)) rounds after the restore"
kill_tree "$ROOT"
pass
