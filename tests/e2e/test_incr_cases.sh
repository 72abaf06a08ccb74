#!/bin/bash
# SPDX-License-Identifier: MIT
# Incremental dumps (docs/incremental.md), the cases around the chain of
# test_incr: a parent whose tracking was used since (full save, said in
# the log), a replaced parent (refused), the holder killed (full save), a
# dump that failed after taking the tracking (the next one on that parent
# saves everything), storage reserved and pages copied before the freeze
# (a task gone, and areas changed, between that and the freeze; a dump
# trying again after its copy),
# exec between two dumps (tracked anew), and a chain
# through ckptd (root). Each restore equals the program's own hash.
. "$(dirname "$0")/lib.sh"

# every "P<i> <what> <round>" line is there for n processes
has_round() { local c; c=$(grep -c " $2\$" "$1" 2>/dev/null); ((${c:-0} >= $3)); }
wait_round() { wait_for 20 "$3 processes '$2' in $1" has_round "$@"; }

# sum_of LOG I ROUND / check_of LOG I: the hash logged
sum_of() { awk -v p="P$2" -v r="$3" '$1 == p && $2 == "sum" && $3 == r { print $4 }' "$1" | tail -n 1; }
check_of() { awk -v p="P$2" '$1 == p && $2 == "check" { print $3 }' "$1" | tail -n 1; }

# full_after_used PID PARENT DIR ROUND WHAT: after a failed dump used up
# PARENT's tracking, the next dump on it (into DIR) leaves no page to it
# (said in its log), and its restore has exactly round ROUND's memory ($LOG)
full_after_used()
{
	local pid=$1 parent=$2 dir=$3 round=$4 what=$5
	ckpt_dump "$pid" "$dir" --parent "$parent" --json -v
	[[ $(json_get "$OUT" pages_unchanged) == 0 ]] ||
		fail "$what: the next dump on the same parent left $(json_get "$OUT" pages_unchanged) pages to it"
	grep -q "write tracking lost (another dump used the tracking" "$ERR" ||
		fail "$what: used tracking not in the log: $(cat "$ERR")"
	ckpt_restore "$dir"
	kill -USR2 "$pid"
	wait_grep "$LOG" "^P0 check"
	[[ $(check_of "$LOG" 0) == "$(sum_of "$LOG" 0 "$round")" ]] ||
		fail "$what: memory after restore differs"
}

# incr_started VAR NAME DIR: the incr workload started as $VAR (log in $LOG,
# $T/NAME.log), pre-dumped into DIR after its round 0, then its round 1 run
incr_started()
{
	local var=$1 name=$2 dir=$3 pid
	LOG=$T/$name.log
	diag_add "$LOG"
	start_workload "$var" "$T/$name.ready" -- "$WL/incr" "$LOG" "$T/$name.ready"
	pid=${!var}
	wait_round "$LOG" "ready 0" 1
	ckpt_dump "$pid" "$dir" --pre-dump
	kill -USR1 "$pid"
	wait_round "$LOG" "ready 1" 1
}

# A parent whose tracking was used since (pre-dump B on top of A, then a
# dump on top of A again): the tracking now counts from B, so the dump on
# A saves everything (said in its log) and still restores exactly.
incr_started R reuse "$T/ra"
ckpt_dump "$R" "$T/rb" --pre-dump --parent "$T/ra"
kill -USR1 "$R"
wait_round "$LOG" "ready 2" 1
ckpt_dump "$R" "$T/rc" --parent "$T/ra" --json -v
unchanged=$(json_get "$OUT" pages_unchanged)
((unchanged == 0)) || fail "dump on a parent whose tracking was used since left $unchanged pages to it"
grep -q "write tracking lost" "$ERR" || fail "the lost tracking is not in the log: $(cat "$ERR")"
# the parent replaced: refused
ckpt_restore "$T/rc"
kill -USR2 "$R"
wait_grep "$LOG" "^P0 check"
[[ $(check_of "$LOG" 0) == "$(sum_of "$LOG" 0 2)" ]] || fail "memory after restore differs"
kill_tree "$R"
rm -rf "$T/ra"
cp -a "$T/rb" "$T/ra"
ckptctl_run restore "$T/rc" && fail "restore on a replaced parent succeeded"
grep -q "not the one it was dumped against" "$ERR" || fail "replaced parent: unexpected error $(cat "$ERR")"

# The holder killed: the tracking is lost, the next dump saves every page
# (said in its log) and restores exactly.
holder_of() { "$CKPTCTL" show "$1" inventory.img | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["tracking"]["holder_pid"])'; }
LOG=$T/hk.log
diag_add "$LOG"
start_workload H "$T/hk.ready" -- "$WL/incr" "$LOG" "$T/hk.ready"
wait_round "$LOG" "ready 0" 1
ckpt_dump "$H" "$T/h1" --pre-dump
hp=$(holder_of "$T/h1") || fail "no holder in $T/h1's inventory"
[[ $(cat "/proc/$hp/comm") == ckpt-holder ]] || fail "pid $hp is not a ckpt-holder"
for f in /proc/"$H"/fd/*; do
	[[ $(readlink "$f") == *userfaultfd* ]] && fail "the program has a userfaultfd: $f"
done
grep -q " uw" "/proc/$H/smaps" || fail "no area of the program is tracked (VmFlags uw)"
kill -KILL "$hp"
kill -USR1 "$H"
wait_round "$LOG" "ready 1" 1
ckpt_dump "$H" "$T/h2" --parent "$T/h1" --json -v -R
[[ $(json_get "$OUT" pages_unchanged) == 0 ]] ||
	fail "dump after the holder was killed left $(json_get "$OUT" pages_unchanged) pages to its parent"
grep -q "write tracking lost (its holder process is gone)" "$ERR" || fail "lost holder not in the log: $(cat "$ERR")"
# a dump that fails after taking the tracking: the tracking is used up
ckpt_dump "$H" "$T/h3" --pre-dump
kill -USR1 "$H"
wait_round "$LOG" "ready 2" 1
CKPT_FAULT=dump-write ckptctl_run dump "$H" -D "$T/hy" --pre-dump --parent "$T/h3" && fail "injected fault: dump succeeded"
full_after_used "$H" "$T/h3" "$T/h4" 2 "failed pre-dump"
kill_tree "$H"

# Before the freeze, a killing dump with --parent gives each tracked task's
# pages image its memory, and copies what the tasks wrote since the parent
# (protecting those pages again) while the tree still runs
# (docs/incremental.md). The dump is paused after both (step dump-reserve);
# then the program runs round 3: it writes again pages that were copied,
# moves copied pages onto other copied ones, drops copied pages and reads
# some back. The restore must give exactly what it had after round 3: from
# the copy only what was not written or moved since, the rest read in the
# freeze. The parent's frames were compared with the tasks' before the
# pause too, so the freeze reads none: what round 3 does after that is told
# by the pages' categories alone (docs/incremental.md, "Which pages refer to
# the parent"). Once with 2 children (pages shared copy-on-write: a write gives
# a page a new frame; P1 is also killed at the pause and reaped by the
# root, so its reservation is never used: the checkpoint holds no image of
# it and passes its own check), once alone (written in place: a page keeps
# its frame, only its protection says it changed).
# dead PID: gone or a zombie
dead() { ! proc_stat "$1" || [[ $S_STATE == Z ]]; }

precopy_case() # NAME NCHILD
{
	local name=$1 nchild=$2 p1= procs n i
	LOG=$T/$name.log
	diag_add "$LOG"
	start_workload S "$T/$name.ready" -- "$WL/incr" "$LOG" "$T/$name.ready" "$nchild"
	procs=$((nchild + 1))
	wait_round "$LOG" "ready 0" "$procs"
	if ((nchild)); then
		read -r p1 _ <"/proc/$S/task/$S/children"
		[[ -n $p1 ]] || fail "$name: no child of pid $S"
	fi
	ckpt_dump "$S" "$T/$name.1" --pre-dump
	((nchild)) && procs=$((procs + 1)) # P<nchild+1>, born in round 1
	for n in 1 2; do
		kill -USR1 "$S"
		wait_round "$LOG" "ready $n" "$procs"
	done
	paused_dump "$S" dump-reserve -D "$T/$name.2" --parent "$T/$name.1" --json -vv
	grep -q "KiB of pages images reserved before the freeze" "$ERR" ||
		fail "$name: nothing reserved before the freeze: $(cat "$ERR")"
	grep -Eq "protected again before the freeze, [1-9][0-9]* of them copied" "$ERR" ||
		fail "$name: nothing copied before the freeze: $(cat "$ERR")"
	grep -Eq "frames of [1-9][0-9]* pages of the parent checked before the freeze" "$ERR" ||
		fail "$name: the parent's frames were not checked before the freeze: $(cat "$ERR")"
	if [[ -n $p1 ]]; then
		kill -KILL "$p1"
		# dead before round 3 starts: the round ends with a waitpid
		# WNOHANG, which a kill still in flight would miss (and the root
		# would then never reap P1: seen once in a loaded full run)
		wait_for 10 "pid $p1 to die" dead "$p1"
		procs=$((procs - 1))
	fi
	kill -USR1 "$S" # round 3, which ends with waitpid: P1 is reaped
	wait_round "$LOG" "ready 3" "$procs"
	[[ -n $p1 ]] && wait_for 10 "pid $p1 to be reaped" eval "! test -e /proc/$p1"
	release_dump
	((RC == 0)) || fail "$name: dump paused after the copy: exit $RC: $(cat "$ERR")"
	log "$name: $(json_get "$OUT" pages_saved) pages saved, round 3 run after the copy"
	[[ -n $p1 && -e $T/$name.2/pages-$p1.img ]] &&
		fail "$name: the checkpoint has an image of pid $p1, gone before the freeze"
	ckpt_restore "$T/$name.2"
	kill -USR2 "$S"
	wait_round "$LOG" "check [0-9a-f]*" "$procs"
	for ((i = 0; i <= nchild + 1; i++)); do
		[[ $i == 1 && -n $p1 ]] && continue
		((i == nchild + 1 && nchild == 0)) && continue
		[[ $(check_of "$LOG" "$i") == "$(sum_of "$LOG" "$i" 3)" ]] ||
			fail "$name, P$i: memory after restore differs from the dump's"
	done
	kill_tree "$S"
}
precopy_case pc 2
precopy_case pa 0

# A final dump that tries again after its copy: a signal arrives while the
# first try commits, so that checkpoint is withdrawn and the tree resumed
# (docs/dump.md). The first try's copy used up the parent's tracking; the
# next try goes on from that copy and the parent's frames (dump_incr_keep),
# so it still leaves unchanged pages to the parent, and restores exactly.
incr_started G rt "$T/g1"
paused_dump "$G" dump-finish -D "$T/g2" --parent "$T/g1" --json -vv
kill -USR2 "$G" # logs a check: its memory is as it was
release_dump
((RC == 0)) || fail "dump after a withdrawn try: exit $RC: $(tail -n 5 "$ERR")"
grep -q "attempt 1: .*a signal arrived while the checkpoint was being committed" "$ERR" ||
	fail "the dump did not try again: $(cat "$ERR")"
unchanged=$(json_get "$OUT" pages_unchanged)
((unchanged > 0)) || fail "the second try left no page to the parent (saved everything)"
log "second try: $(json_get "$OUT" pages_saved) pages saved, $unchanged unchanged"
ckpt_restore "$T/g2"
kill -USR2 "$G"
wait_round "$LOG" "check [0-9a-f]*" 2
[[ $(check_of "$LOG" 0) == "$(sum_of "$LOG" 0 1)" ]] || fail "memory after restore differs (a dump that tried again)"
kill_tree "$G"

# A killing dump that fails after its copy before the freeze: the pages it
# protected again were written since the parent, so the parent's tracking
# is used up: the tree runs on, and the next dump on that parent saves
# everything (said in its log) and restores exactly.
incr_started F pf "$T/f1"
CKPT_FAULT=dump-seize ckptctl_run dump "$F" -D "$T/fx" --parent "$T/f1" -vv &&
	fail "injected fault: dump succeeded"
grep -Eq "of them copied" "$ERR" || fail "the failed dump copied nothing first: $(cat "$ERR")"
assert_tree_running "$F"
full_after_used "$F" "$T/f1" "$T/f2" 1 "failed dump after its copy"
kill_tree "$F"

# exec between two dumps: the task's new address space is saved in full
# and tracked anew (the old userfaultfd belongs to the one it left), so the
# dump after the next one leaves its unchanged pages to its parent.
mkfifo "$T/ex.fifo"
start_workload X "$T/ex.ready" -- bash -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1"; read -r _ <"$2"; exec sleep 1000' _ "$T/ex.ready" "$T/ex.fifo"
ckpt_dump "$X" "$T/x1" --pre-dump
echo go >"$T/ex.fifo"
wait_for 10 "pid $X to exec sleep" eval "[[ \$(cat /proc/$X/comm) == sleep ]]"
ckpt_dump "$X" "$T/x2" --pre-dump --parent "$T/x1" --json -v
grep -q "exec): tracked anew" "$ERR" || fail "exec not seen: $(cat "$ERR")"
ckpt_dump "$X" "$T/x3" --parent "$T/x2" --json
unchanged=$(json_get "$OUT" pages_unchanged)
((unchanged > 0)) || fail "after exec, the next dumps are never incremental ($unchanged pages unchanged)"
ckpt_restore "$T/x3"
assert_tree_running "$X"
[[ $(cat "/proc/$X/comm") == sleep ]] || fail "restored pid $X is not sleep"
kill_tree "$X"

# Through ckptd (root): the same chain, the dumps made by ckptd's workers.
. "$(dirname "$0")/ckptd_lib.sh"
start_ckptd
LOG=$T/d.log
diag_add "$LOG"
start_workload D "$T/d.ready" -- "$WL/incr" "$LOG" "$T/d.ready" 1
wait_round "$LOG" "ready 0" 2
ckpt_dump "$D" "$T/d1" --pre-dump --json
grep -q '"job_id"' "$OUT" || fail "the pre-dump did not go through ckptd: $(cat "$OUT")"
first=$(json_get "$OUT" pages_bytes)
assert_tree_running "$D"
kill -USR1 "$D"
wait_round "$LOG" "ready 1" 2
ckpt_dump "$D" "$T/d2" --pre-dump --parent "$T/d1" --json
kill -USR1 "$D"
wait_round "$LOG" "ready 2" 2
ckpt_dump "$D" "$T/d3" --parent "$T/d2" --json
last=$(json_get "$OUT" pages_bytes)
log "through ckptd: pre-dump $first bytes of pages, final dump $last"
((last * 4 < first)) || fail "final dump through ckptd wrote $last bytes of pages, the pre-dump $first"
assert_tree_gone "$D"
ckpt_restore "$T/d3"
kill -USR2 "$D"
wait_round "$LOG" "check [0-9a-f]*" 2
for i in 0 1 2; do
	[[ $(check_of "$LOG" "$i") == "$(sum_of "$LOG" "$i" 2)" ]] ||
		fail "through ckptd, P$i: memory after restore differs from the dump's"
done
kill_tree "$D"
stop_ckptd
pass
