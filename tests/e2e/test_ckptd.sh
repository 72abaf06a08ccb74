#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptd with --socket: dump and restore of real programs through ckptctl
# and through libckpt;
# `ckptctl ps`; two dumps at once; a second dump of a tree being dumped is
# refused as busy; a client killed mid-dump cancels the job and the target
# keeps running intact, and so does `ckptctl cancel` (images removed); dump.log / restore.log land in the image directory;
# SIGTERM stops the daemon.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

start_ckptd

# --- dump and restore through the daemon ------------------------------------
NS_LOG=$T/ns.log
diag_add "$NS_LOG"
start_workload NS "$T/ns.ready" -- "$WL/sleeper" nanosleep "$NS_LOG" "$T/ns.ready" 1
wait_grep "$NS_LOG" '^tick 1$'
ckpt_dump "$NS" "$T/ns.img" --json
grep -q '"job_id"' "$OUT" || fail "dump --json through ckptd has no job_id: $(cat "$OUT")"
[[ -s $T/ns.img/dump.log ]] || fail "no dump.log in the image directory"
assert_tree_gone "$NS"
ckpt_restore "$T/ns.img"
[[ $RESTORED_PID == "$NS" ]] || fail "restored root pid $RESTORED_PID, dumped $NS"
[[ -s $T/ns.img/restore.log ]] || fail "no restore.log in the image directory"
ticks=$(grep -c '^tick' "$NS_LOG")
wait_grep "$NS_LOG" "^tick $((ticks + 2))\$" 10
log "nanosleep sleeper restored through ckptd and ticking"
kill_tree "$NS"

# --- the same through libckpt, as a job scheduler does -------------------------
EX=$CKPT_BUILD/tests/examples/ckpt-example
[[ -x $EX ]] || fail "libckpt example not built: $EX"
{
	start_workload LB "$T/lb.ready" -- "$WL/sleeper" nanosleep "$T/lb.log" "$T/lb.ready" 1
	"$EX" --socket "$SOCK" dump "$LB" "$T/lb.img" >"$T/lb.dump" 2>&1 ||
		fail "libckpt dump failed: $(cat "$T/lb.dump")"
	grep -q "status=0 pid=$LB " "$T/lb.dump" || fail "libckpt dump: $(cat "$T/lb.dump")"
	# no waiting here: the daemon waits for the dumped pids to be reaped
	"$EX" --socket "$SOCK" restore "$T/lb.img" >"$T/lb.restore" 2>&1 ||
		fail "libckpt restore failed: $(cat "$T/lb.restore")"
	grep -q "status=0 pid=$LB " "$T/lb.restore" || fail "libckpt restore: $(cat "$T/lb.restore")"
	assert_running "$LB"
	log "libckpt: dump and restore of pid $LB through ckptd"
	kill_tree "$LB"
}

# --- ps lists both jobs -----------------------------------------------------
ckptctl_run ps --json || fail "ckptctl ps failed: $(cat "$ERR")"
grep -q '"type":"dump","state":"done"' "$OUT" || fail "ps: no finished dump: $(cat "$OUT")"
grep -q '"type":"restore","state":"done"' "$OUT" || fail "ps: no finished restore: $(cat "$OUT")"
ckptctl_run ps || fail "ckptctl ps (table) failed"
log "ps: $(wc -l <"$OUT") lines"

# --- two dumps at once --------------------------------------------------------
start_workload A "$T/a.ready" -- "$WL/memhog" 64 "$T/a.log" "$T/a.ready"
start_workload B "$T/b.ready" -- "$WL/memhog" 64 "$T/b.log" "$T/b.ready"
"$CKPTCTL" dump "$A" -D "$T/a.img" --leave-running >"$T/a.out" 2>&1 &
da=$!
"$CKPTCTL" dump "$B" -D "$T/b.img" --leave-running >"$T/b.out" 2>&1 &
db=$!
wait "$da" || fail "concurrent dump of $A failed: $(cat "$T/a.out")"
wait "$db" || fail "concurrent dump of $B failed: $(cat "$T/b.out")"
[[ -s $T/a.img/inventory.img && -s $T/b.img/inventory.img ]] || fail "concurrent dumps left no images"
assert_running "$A"
assert_running "$B"
log "two concurrent dumps done, both trees left running"
kill_tree "$A"
kill_tree "$B"

# --- busy, and a client killed mid-dump --------------------------------------
HOG_LOG=$T/hog.log
diag_add "$HOG_LOG"
start_workload HOG "$T/hog.ready" -- "$WL/memhog" 1536 "$HOG_LOG" "$T/hog.ready"
wait_grep "$HOG_LOG" '^ok 1 ' 20
"$CKPTCTL" dump "$HOG" -D "$T/hog.img" >"$T/hog.out" 2>&1 &
client=$!
# the second request must come while the first job runs
busy_seen=0
for _ in $(seq 1 40); do
	if grep -q '"state":"running"' <("$CKPTCTL" ps --json 2>/dev/null); then
		expect_fail "second dump of a tree being dumped" "pid $HOG is already being dumped \(job [0-9]+\)" \
			dump "$HOG" -D "$T/hog2.img"
		busy_seen=1
		break
	fi
	sleep 0.05
done
((busy_seen)) || fail "the dump of the 1.5 GiB memhog finished before a second request could be sent"
kill -9 "$client"
wait "$client" 2>/dev/null
log "client of the dump killed"
wait_grep "$CKPTD_LOG" 'dump cancelled' 30
assert_running "$HOG"
n=$(grep -c '^ok' "$HOG_LOG")
wait_grep "$HOG_LOG" "^ok $((n + 3)) " 20
grep -q CORRUPT "$HOG_LOG" && fail "memhog memory corrupted after the cancelled dump"
[[ -e $T/hog.img/inventory.img ]] && fail "the cancelled dump left an inventory"
ckptctl_run ps --json
grep -q '"state":"cancelled"' "$OUT" || fail "ps shows no cancelled job: $(cat "$OUT")"
log "cancelled dump: memhog keeps running, memory intact, no checkpoint left"
kill_tree "$HOG"

# --- cancelled while memory is being written: the images are removed --------
# A tree of three memhogs under a shell: `ckptctl cancel` once the first
# memhog's pages are written; the dump fails as cancelled, the rollback
# resumes every task and removes the pages already in the directory.
cat >"$T/tree.sh" <<SH
for i in 1 2 3; do "$WL/memhog" 384 "$T/mh.\$i.log" "$T/mh.\$i.ready" & done
while [ ! -s "$T/mh.3.ready" ] || [ ! -s "$T/mh.2.ready" ] || [ ! -s "$T/mh.1.ready" ]; do sleep 0.05; done
echo \$\$ >"$T/tree.ready"
wait
SH
start_workload TR "$T/tree.ready" -- bash "$T/tree.sh"
"$CKPTCTL" dump "$TR" -D "$T/tree.img" --json >"$T/tree.out" 2>&1 &
client=$!
two_done() { grep -qE '"tasks_done":[2-9]' "$T/tree.out"; }
wait_for 30 "two tasks of the tree dumped" two_done
compgen -G "$T/tree.img/pages-*" >/dev/null || fail "no pages written before the cancel"
job=$(grep -oE '"job_id":[0-9]+' "$T/tree.out" | head -n 1 | cut -d: -f2)
ckptctl_run cancel "$job" || fail "ckptctl cancel $job failed: $(cat "$ERR")"
wait "$client" && fail "the cancelled dump succeeded: $(cat "$T/tree.out")"
grep -q '"status":"error"' "$T/tree.out" || fail "no error result for the cancelled dump"
wait_grep "$CKPTD_LOG" "dump cancelled in .*: dump cancelled while copying memory" 30
assert_tree_running "$TR"
for i in 1 2 3; do
	n=$(grep -c '^ok' "$T/mh.$i.log")
	wait_grep "$T/mh.$i.log" "^ok $((n + 2)) " 20
	grep -q CORRUPT "$T/mh.$i.log" && fail "memhog $i corrupted after the cancelled dump"
done
left=$(ls "$T/tree.img")
[[ $left == dump.log ]] || fail "the cancelled dump left files: $left"
log "cancelled mid-memory: tree running, memory intact, only dump.log left"
kill_tree "$TR"

# --- a non-empty directory is refused, nothing touched -----------------------
mkdir "$T/full" && echo x >"$T/full/keep"
start_workload S "$T/s.ready" -- "$WL/sleeper" pause "$T/s.log" "$T/s.ready"
expect_fail "dump into a non-empty directory" "not empty" dump "$S" -D "$T/full"
assert_running "$S"
[[ $(cat "$T/full/keep") == x ]] || fail "the non-empty directory was touched"
kill_tree "$S"

assert_ckptd_alive
stop_ckptd
grep -q 'stopped' "$CKPTD_LOG" || fail "ckptd did not log its stop"
pass
