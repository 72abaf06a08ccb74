#!/bin/bash
# SPDX-License-Identifier: MIT
# Event fds (lib/kinds/eventfd.c, epoll.c, signalfd.c, timerfd.c,
# inotify.c). tests/workloads/evfd.c runs one epoll loop over two eventfds
# (a counter, a semaphore), a signalfd for SIGUSR1, a 100 ms periodic
# timerfd, a one-shot timerfd 1000 s ahead, an absolute CLOCK_REALTIME
# timerfd, and an inotify instance with watches wd 2 (DIR/b) and 3 (DIR),
# wd 1 removed; it checks all of them itself ("bad N").
#  - dump and restore: same pid, every line "bad 0", the ticks go on, the
#    one-shot timer kept its remaining time (the time spent checkpointed
#    does not count), the absolute one its wall-clock expiration (checked by
#    the program), SIGUSR1 sent after restore is read from the signalfd,
#    files created after restore are reported with the same watch numbers,
#    EPOLL_CTL_MOD by the program's fd numbers works (checked by it);
#  - every fault step of these kinds fails the dump (program intact) or the
#    restore (nothing left behind);
#  - an epoll instance shared by a parent and its child (every fd held by
#    both) is filled once and works in both after restore;
#  - an epoll registration whose fd was closed (the file kept open under
#    another number) is refused, naming the pid, the fd and the reason; the
#    program keeps running.
. "$(dirname "$0")/lib.sh"

[[ -x $WL/evfd ]] || fail "$WL/evfd not found: build first"

LOG=$T/evfd.log
W=$T/watch
mkdir -p "$W"
diag_add "$LOG"

# lines_ok FROM: "ok" lines numbered 1, 2, 3... and every line "bad 0", no "bad" report.
lines_ok()
{
	grep -n '^bad' "$LOG" && fail "the program found a difference: $(grep -m1 '^bad' "$LOG")"
	awk '/^ok / { n++; if ($2 != n || $NF != 0) { print "line " NR ": " $0; bad = 1; exit } }
		END { exit bad }' "$LOG" || fail "$1: log not continuous or not clean"
}
ok_count() { grep -c '^ok ' "$LOG"; }
wait_ok() { local n; n=$(ok_count); wait_for "${2:-10}" "$1 more ok lines" eval "(( \$(ok_count) >= n + $1 ))"; }
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$1"; }

start_workload E "$T/evfd.ready" -- "$WL/evfd" "$LOG" "$T/evfd.ready" "$W"
wait_grep "$LOG" '^ok 3 ' 10
grep -qx 'watches 2 3' "$LOG" || fail "unexpected watch numbers: $(grep '^watches' "$LOG")"
touch "$W/before.$$"
kill -USR1 "$E"
wait_grep "$LOG" "^inotify wd 3 .* name before\\.$$" 5
wait_grep "$LOG" '^signal 1 signo 10' 5
wait_ok 1
lines_ok "before the dump"

# ---- fault steps of the event fd kinds -----------------------------------------
tree_snapshot "$E" >"$T/tree.before"
STEPS=$(fault_steps kinds | tr ' ' '\n' | grep -E '^(eventfd|epoll|signalfd|timerfd|inotify)-' | tr '\n' ' ')
log "event fd fault steps: $STEPS"
[[ $STEPS == *epoll-install* ]] || fail "no epoll-install fault step found"
LAST_IMG=''
for step in $STEPS; do
	dir=$T/$step.img
	if ! CKPT_FAULT=$step ckptctl_run dump "$E" -D "$dir"; then
		grep -q -- "$step" "$ERR" || fail "$step: dump error does not name the step: $(cat "$ERR")"
		assert_running "$E"
		[[ ! -e $dir/inventory.img ]] || fail "$step: a failed dump left a checkpoint"
		wait_ok 2
		lines_ok "$step (dump)"
		log "$step: dump refused, program intact"
		continue
	fi
	assert_tree_gone "$E"
	if CKPT_FAULT=$step ckptctl_run restore "$dir" --json; then
		fail "$step: neither the dump nor the restore failed with CKPT_FAULT=$step"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	ckpt_restore "$dir"
	[[ $RESTORED_PID == "$E" ]] || fail "$step: restored pid $RESTORED_PID, dumped $E"
	wait_ok 2
	lines_ok "$step (restore)"
	log "$step: restore refused and left nothing; a normal restore then worked"
done

# ---- dump, wait, restore ----------------------------------------------------------
before=$(grep '^ok ' "$LOG" | tail -n 1)
ckpt_dump "$E" "$T/img"
assert_tree_gone "$E"
last=$(grep '^ok ' "$LOG" | tail -n 1)
log "at dump: $last"
"$CKPTCTL" show "$T/img" files.img >"$T/files.json" || fail "ckptctl show failed"
for k in FILE_EVENTFD FILE_EPOLL FILE_SIGNALFD FILE_TIMERFD FILE_INOTIFY; do
	grep -q "\"$k\"" "$T/files.json" || fail "files.img has no $k entry"
done
sleep 2 # the one-shot timer must not count this
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$E" ]] || fail "restored root pid $RESTORED_PID, dumped $E"
assert_running "$E"
wait_ok 3
first=$(grep '^ok ' "$LOG" | grep -A1 -Fx "$last" | tail -n 1)
log "after restore: $first"
t0=$(field "$last" ticks) t1=$(field "$(grep '^ok ' "$LOG" | tail -n 1)" ticks)
((t1 >= t0 + 10)) || fail "the periodic timerfd did not go on: ticks $t0 at dump, $t1 now"
o0=$(field "$last" oneshot) o1=$(field "$first" oneshot)
d=$((o0 - o1))
log "one-shot timerfd: ${o0} ms left at dump, ${o1} ms after restore (${d} ms apart)"
((d >= 0 && d <= 1500)) || fail "the one-shot timerfd lost ${d} ms (the 2 s spent checkpointed must not count)"
kill -USR1 "$E"
wait_grep "$LOG" "^signal 2 signo 10 pid $$" 5
touch "$W/after.$$" "$W/b/inb.$$"
wait_grep "$LOG" "^inotify wd 3 .* name after\\.$$" 5
wait_grep "$LOG" "^inotify wd 2 .* name inb\\.$$" 5
wait_ok 2
lines_ok "after restore"
kill_tree "$E"
untrack "$E"

# ---- an epoll instance shared by two tasks (a child holds every fd too) ----------
FLOG=$T/fork.log
diag_add "$FLOG"
mkdir -p "$T/w3"
start_workload FK "$T/fork.ready" -- "$WL/evfd" "$FLOG" "$T/fork.ready" "$T/w3" fork
wait_grep "$FLOG" '^ok 2 ' 10
tree_snapshot "$FK" >"$T/tree.fork"
(($(wc -l <"$T/tree.fork") == 2)) || fail "fork: expected 2 processes: $(cat "$T/tree.fork")"
ckpt_dump "$FK" "$T/fork.img"
assert_tree_gone "$FK"
ckpt_restore "$T/fork.img"
assert_same_tree "$T/tree.fork" "$FK"
n=$(grep -c '^ok ' "$FLOG")
wait_for 10 "the shared-epoll program to go on" eval "(( \$(grep -c '^ok ' \"\$FLOG\") >= n + 3 ))"
touch "$T/w3/shared.$$"
wait_grep "$FLOG" "^inotify wd 3 .* name shared\\.$$" 5
grep -q '^bad' "$FLOG" && fail "fork: the program found a difference: $(grep -m1 '^bad' "$FLOG")"
for p in $(awk '{print $1}' "$T/tree.fork"); do
	diff <(grep -h '^tfd:' /proc/"$FK"/fdinfo/* | sort) <(grep -h '^tfd:' /proc/"$p"/fdinfo/* | sort) >/dev/null ||
		fail "fork: pid $p does not see the same registrations"
done
kill_tree "$FK"
untrack "$FK"

# ---- refused: a registration under a closed fd number ---------------------------
SLOG=$T/stale.log
diag_add "$SLOG"
mkdir -p "$T/w2"
start_workload S "$T/stale.ready" -- "$WL/evfd" "$SLOG" "$T/stale.ready" "$T/w2" stale
wait_grep "$SLOG" '^ok 2 ' 10
x=$(awk '/^stale/ {print $2}' "$SLOG")
ckptctl_run dump "$S" -D "$T/stale.img" && fail "dump of an epoll with a stale registration succeeded"
log "stale: refused: $(cat "$ERR")"
grep -q "pid $S" "$ERR" && grep -q "registered as fd $x" "$ERR" && grep -q closed "$ERR" ||
	fail "stale: message does not name the pid, the fd and the reason: $(cat "$ERR")"
[[ ! -e $T/stale.img/inventory.img ]] || fail "stale: a refused dump left a checkpoint"
assert_running "$S"
n=$(grep -c '^ok ' "$SLOG")
wait_for 10 "the refused program to go on" eval "(( \$(grep -c '^ok ' \"\$SLOG\") >= n + 3 ))"
grep -q '^bad' "$SLOG" && fail "stale: the program found a difference after the refused dump"
kill_tree "$S"
untrack "$S"
pass
