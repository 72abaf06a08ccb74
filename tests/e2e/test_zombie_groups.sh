#!/bin/bash
# SPDX-License-Identifier: MIT
# Zombies in a process group or session of their own (a shell's finished
# job) come back as zombies in the same group and session, with the same
# pids, and their parent (python3) reaps them with their exit statuses
# after the restore. A zombie leading a group with a live member (a
# pipeline whose first process exited) comes back leading it: the member
# is in its group, and after the zombie is reaped killpg of that group
# still reaches the member.
. "$(dirname "$0")/lib.sh"

LOG=$T/zg.log
diag_add "$LOG"
start_workload ZG "$T/zg.ready" -- "$PYTHON" "$WLSRC/zgroups.py" "$LOG" "$T/zg.ready" "$T/go"
wait_lines "$LOG" 5 10
head -n 5 "$LOG" >"$T/before"
grep -q "state Z" "$T/before" || fail "no zombies: $(cat "$T/before")"
ckpt_dump "$ZG" "$T/img"
assert_tree_gone "$ZG"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$ZG" ]] || fail "restored root pid $RESTORED_PID, dumped $ZG"
touch "$T/go"
wait_grep "$LOG" '^member reaped' 10
sed -n 6,10p "$LOG" >"$T/after"
diff -u "$T/before" "$T/after" || fail "the zombies' groups or sessions changed"
grep -qx 'member reaped -15' "$LOG" || fail "killpg of the zombie-led group did not reach its member: $(grep 'member reaped' "$LOG")"
for code in 3 4 5 6; do
	grep -q "^reaped [0-9]* $code\$" "$LOG" || fail "no child reaped with status $code: $(grep reaped "$LOG")"
done
log "$(tr '\n' ';' <"$T/after")"
pass
