#!/bin/bash
# SPDX-License-Identifier: MIT
# Incremental dumps of a real interpreter (docs/incremental.md): python3
# holding 64 MiB of buffers that it writes, replaces and grows between the
# dumps (its allocator maps, unmaps and moves memory with mremap). A chain
# pre-dump -> pre-dump -> final dump; the final dump is paused after its
# copy before the freeze, and the program runs one more round before it
# goes on, so that the freeze meets pages written, moved and freed since
# the copy. The restore must give the same pid and exactly the memory the
# program hashed last; each incremental dump saves much less than the
# first.
. "$(dirname "$0")/lib.sh"

LOG=$T/py.log
diag_add "$LOG"
start_workload P "$T/py.ready" -- "$PYTHON" "$WLSRC/incrpy.py" "$LOG" "$T/py.ready"
sums() { grep -c "^sum " "$LOG" 2>/dev/null; }
next_round() # N: run round N, wait for its sum
{
	kill -USR1 "$P"
	wait_for 20 "round $1 of pid $P" eval "(( \$(sums) >= $1 ))"
}
last_sum() { awk '$1 == "sum" { s = $3 } END { print s }' "$LOG"; }

ckpt_dump "$P" "$T/p1" --pre-dump --json
first=$(json_get "$OUT" pages_bytes)
next_round 1
ckpt_dump "$P" "$T/p2" --pre-dump --parent "$T/p1" --json
second=$(json_get "$OUT" pages_bytes)
next_round 2
paused_dump "$P" dump-reserve -D "$T/p3" --parent "$T/p2" --json -vv
grep -Eq "protected again before the freeze, [1-9][0-9]* of them copied" "$ERR" ||
	fail "nothing copied before the freeze: $(cat "$ERR")"
next_round 3
release_dump
((RC == 0)) || fail "final dump: exit $RC: $(tail -n 5 "$ERR")"
final=$(json_get "$OUT" pages_bytes)
log "pages bytes: pre-dump $first, second $second, final $final"
((second * 2 < first && final * 2 < first)) ||
	fail "incremental dumps saved about as much as the first ($first, $second, $final bytes)"
assert_tree_gone "$P"
want=$(last_sum)
ckpt_restore "$T/p3"
[[ $RESTORED_PID == "$P" ]] || fail "restored as pid $RESTORED_PID, not $P"
kill -USR2 "$P"
wait_grep "$LOG" "^check "
got=$(awk '$1 == "check" { c = $2 } END { print c }' "$LOG")
[[ $got == "$want" ]] || fail "python's memory after restore differs: hash $got, dumped $want"
kill_tree "$P"
pass
