#!/bin/bash
# SPDX-License-Identifier: MIT
# A child forked by a thread other than the main one is part of the dump:
# the dump freezes and saves it (2 tasks), kills it with the tree, and the
# restore brings it back with its pid and parent; it carries on counting,
# and the restored parent reaps it with waitpid and its exit status.
. "$(dirname "$0")/lib.sh"

LOG=$T/thrfork.log STOP=$T/stop
diag_add "$LOG"

# the child's last count in the log; kid_past N: it counted past N
kid_count() { awk -v k="$KID" '$1 == "child" && $2 == k { n = $3 } END { print n + 0 }' "$LOG"; }
kid_past() { (($(kid_count) > $1)); }

start_workload TF "$T/thrfork.ready" -- "$WL/thrfork" "$LOG" "$T/thrfork.ready" "$STOP"
wait_grep "$LOG" '^child ' 10
KID=$(awk '$1 == "child" { print $2; exit }' "$LOG")
[[ -n $KID && -d /proc/$KID ]] || fail "the worker thread's child is not running"
tree_snapshot "$TF" >"$T/tree.before"
(($(wc -l <"$T/tree.before") == 2)) || fail "expected 2 tasks before the dump: $(cat "$T/tree.before")"

ckpt_dump "$TF" "$T/img" --json
[[ $(json_get "$OUT" tasks) == 2 ]] || fail "dump saved $(json_get "$OUT" tasks) task(s), expected 2 (the child of the worker thread)"
assert_tree_gone "$TF"
assert_gone "$KID"
kid_n=$(kid_count)

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$TF" ]] || fail "restored root pid $RESTORED_PID, dumped $TF"
assert_tree_running "$TF"
assert_same_tree "$T/tree.before" "$TF"
wait_for 10 "the child to count past $kid_n" kid_past $((kid_n + 2))
first=$(awk -v k="$KID" -v last="$kid_n" '$1 == "child" && $2 == k && $3 > last { print $3; exit }' "$LOG")
[[ $first == $((kid_n + 1)) ]] || fail "the child's counter went from $kid_n to $first across the restore"

touch "$STOP"
wait_grep "$LOG" '^reaped ' 10
grep -q "^reaped $KID status 7\$" "$LOG" || fail "parent did not reap the child with its status: $(grep '^reaped' "$LOG")"
assert_gone "$TF" "$KID"
pass
