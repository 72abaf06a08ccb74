#!/bin/bash
# SPDX-License-Identifier: MIT
# A Java program on Debian's OpenJDK 17 JVM with default options (a dozen
# JVM threads: GC, JIT compilers, signal dispatcher...; the hsperfdata file
# mapped MAP_SHARED and writable; a heap of reserved-but-untouched GiB) is
# dumped and restored, twice over, and keeps passing its own heap check:
# the tick numbers continue without a gap or reset, every line says "ok",
# and the same pid and thread ids come back.
. "$(dirname "$0")/lib.sh"

JAVA=${CKPT_JAVA:-/usr/bin/java}
JAVAC=${CKPT_JAVAC:-/usr/bin/javac}
[[ -x $JAVA && -x $JAVAC ]] || fail "java/javac not found (packaging/install-deps.sh installs openjdk-17-jdk-headless)"

mkdir -p "$T/classes"
"$JAVAC" -d "$T/classes" "$WLSRC/JavaCounter.java" 2>"$T/javac.err" || fail "javac: $(cat "$T/javac.err")"

LOG=$T/java.log
diag_add "$LOG"
start_workload JVM "$T/java.ready" -- "$JAVA" -cp "$T/classes" JavaCounter "$LOG" "$T/java.ready"
wait_lines "$LOG" 10 30

verify_log()
{
	awk -v want=1 '
		{ if ($1 != "tick=" want) { print FILENAME ":" NR ": expected tick=" want ", got: " $0; bad = 1; exit }
		  if ($NF != "ok") { print FILENAME ":" NR ": " $0; bad = 1; exit }
		  want++ }
		END { if (!bad) print "ticks 1.." want - 1 " all ok"; exit bad }' "$1"
}

for round in 1 2; do
	grep -q "hsperfdata" "/proc/$JVM/maps" || fail "the JVM has no hsperfdata mapping: not the default options?"
	nthreads=$(ls "/proc/$JVM/task" | wc -l)
	ls "/proc/$JVM/task" | sort -n >"$T/tids.before"
	tree_snapshot "$JVM" >"$T/tree.before"
	ckpt_dump "$JVM" "$T/img$round"
	assert_tree_gone "$JVM"
	lines=$(line_count "$LOG")
	verify_log "$LOG" || fail "java log bad before restore (round $round)"
	log "round $round: dumped $nthreads threads after $lines ticks: $(tail -n 1 "$LOG")"

	ckpt_restore "$T/img$round"
	[[ $RESTORED_PID == "$JVM" ]] || fail "restored root pid $RESTORED_PID, dumped $JVM"
	assert_running "$JVM"
	assert_same_tree "$T/tree.before" "$JVM"
	ls "/proc/$JVM/task" | sort -n >"$T/tids.after"
	diff -u "$T/tids.before" "$T/tids.after" || fail "thread ids changed across the restore"
	wait_lines "$LOG" $((lines + 10)) 20
	assert_running "$JVM"
	log "round $round: first tick after restore: $(sed -n "$((lines + 1))p" "$LOG")"
	verify_log "$LOG" || fail "the JVM's own check failed or its ticks have a gap after restore (round $round)"
done
kill_tree "$JVM"
pass
