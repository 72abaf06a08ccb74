#!/bin/bash
# SPDX-License-Identifier: MIT
# Zombies in a process group or session of their own (a shell's finished
# job) come back as zombies in the same group and session, with the same
# pids, and their parent (python3) reaps them with their exit statuses
# after the restore.
. "$(dirname "$0")/lib.sh"

LOG=$T/zg.log
diag_add "$LOG"
start_workload ZG "$T/zg.ready" -- "$PYTHON" "$WLSRC/zgroups.py" "$LOG" "$T/zg.ready" "$T/go"
wait_lines "$LOG" 3 10
head -n 3 "$LOG" >"$T/before"
grep -q "state Z" "$T/before" || fail "no zombies: $(cat "$T/before")"
ckpt_dump "$ZG" "$T/img"
assert_tree_gone "$ZG"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$ZG" ]] || fail "restored root pid $RESTORED_PID, dumped $ZG"
touch "$T/go"
wait_grep "$LOG" '^reaped .* 5$' 10
sed -n 4,6p "$LOG" >"$T/after"
diff -u "$T/before" "$T/after" || fail "the zombies' groups or sessions changed"
for code in 3 4 5; do
	grep -q "^reaped [0-9]* $code\$" "$LOG" || fail "no child reaped with status $code: $(grep reaped "$LOG")"
done
log "$(tr '\n' ';' <"$T/after")"
pass
