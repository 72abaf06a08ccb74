#!/bin/bash
# SPDX-License-Identifier: MIT
# A python3 asyncio program (tests/workloads/pyaio.py): the root runs an
# asyncio loop (epoll, self-pipe socketpair) with an asyncio unix server and
# loop.call_later timers; its child is a selectors (epoll) client
# exchanging numbered requests with it every 50 ms. After dump and restore
# (same pids, same tree) the exchange goes on with no gap and no mismatch
# (both sides check), the call_later timer keeps ticking, and the epoll
# instances of both processes hold their registrations.
. "$(dirname "$0")/lib.sh"

LOG=$T/aio.log
D=$T/work
mkdir -p "$D"
diag_add "$LOG"

ok_last() { awk '/^ok / { n = $2 } END { print n + 0 }' "$LOG"; }
tick_last() { awk '/^tick / { n = $2 } END { print n + 0 }' "$LOG"; }
check_log()
{
	grep -n FAIL "$LOG" && fail "$1: the program found a mismatch: $(grep -m1 FAIL "$LOG")"
	awk '/^ok / { n++; if ($2 != n) { print "line " NR ": " $0 " (expected ok " n ")"; bad = 1; exit } }
		END { exit bad }' "$LOG" || fail "$1: the exchange has a gap"
}

start_workload A "$T/aio.ready" -- "$PYTHON" "$WLSRC/pyaio.py" "$D" "$LOG" "$T/aio.ready"
wait_for 15 "20 exchanges" eval '(( $(ok_last) >= 20 ))'
wait_grep "$LOG" '^tick 5$' 10
check_log "before the dump"
tree_snapshot "$A" >"$T/tree.before"
(($(wc -l <"$T/tree.before") == 2)) || fail "expected 2 processes: $(cat "$T/tree.before")"
for p in $(awk '{print $1}' "$T/tree.before"); do
	grep -q '^tfd:' /proc/"$p"/fdinfo/* 2>/dev/null || fail "pid $p has no epoll registration"
done

ckpt_dump "$A" "$T/img"
assert_tree_gone "$A"
n0=$(ok_last) k0=$(tick_last)
log "at dump: ok $n0, tick $k0"
sleep 1
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$A" ]] || fail "restored root pid $RESTORED_PID, dumped $A"
assert_same_tree "$T/tree.before" "$A"
wait_for 10 "20 more exchanges" eval '(( $(ok_last) >= n0 + 20 ))'
wait_for 10 "the call_later timer" eval '(( $(tick_last) >= k0 + 10 ))'
check_log "after restore"
assert_tree_running "$A"
log "after restore: ok $(ok_last), tick $(tick_last)"
pass
