#!/bin/bash
# SPDX-License-Identifier: MIT
# A JVM under allocation (OpenJDK 17, default G1 and heap sizing, four
# threads filling and dropping HashMaps, a GiB or so resident) is
# checkpointed mid-run twice: once with --leave-running, later with a
# killing dump that is restored. The restored run must print exactly the
# result of an uninterrupted run; then the --leave-running checkpoint is
# restored too after the first run has ended, and must be refused: the
# JVM's shared hsperfdata mapping it needs was deleted at the JVM's exit.
# (three JVM runs of ~10 s each on an idle machine: more than the default 150 s
# when the machine is busy)
: "${CKPT_E2E_TIMEOUT:=270}"
export CKPT_E2E_TIMEOUT
. "$(dirname "$0")/lib.sh"

JAVA=${CKPT_JAVA:-/usr/bin/java}
JAVAC=${CKPT_JAVAC:-/usr/bin/javac}
[[ -x $JAVA && -x $JAVAC ]] || fail "java/javac not found (packaging/install-deps.sh installs openjdk-17-jdk-headless)"
ROUNDS=${JAVA_ALLOC_ROUNDS:-60}
THREADS=4

mkdir -p "$T/classes"
"$JAVAC" -d "$T/classes" "$WLSRC/JavaAlloc.java" 2>"$T/javac.err" || fail "javac: $(cat "$T/javac.err")"

result_of() { awk '$1 == "result" { print $2 }' "$1"; }
rounds_done() { awk '$1 == "round" { n++ } END { print n + 0 }' "$1"; }
has_result() { [[ -n $(result_of "$1") ]]; }
rounds_at_least() { (($(rounds_done "$1") >= $2)); }

# The uninterrupted run.
REF=$T/ref.log
diag_add "$REF"
start_workload REFPID "$T/ref.ready" -- "$JAVA" -cp "$T/classes" JavaAlloc "$ROUNDS" "$REF" "$T/ref.ready"
wait_for 150 "the uninterrupted run to finish" has_result "$REF"
want=$(result_of "$REF")
log "uninterrupted result $want"

LOG=$T/run.log
diag_add "$LOG"
start_workload JVM "$T/run.ready" -- "$JAVA" -cp "$T/classes" JavaAlloc "$ROUNDS" "$LOG" "$T/run.ready"
total=$((ROUNDS * THREADS))
tree_snapshot "$JVM" >"$T/tree.before"
wait_for 60 "a quarter of the rounds" rounds_at_least "$LOG" $((total / 4))
ckpt_dump "$JVM" "$T/img1" --leave-running
at1=$(rounds_done "$LOG")
assert_running "$JVM"
log "--leave-running checkpoint after $at1 of $total rounds: $(du -sh "$T/img1" | cut -f1)"

wait_for 60 "half the rounds" rounds_at_least "$LOG" $((total / 2))
has_result "$LOG" && fail "the run finished before the second checkpoint: raise JAVA_ALLOC_ROUNDS"
ckpt_dump "$JVM" "$T/img2"
assert_tree_gone "$JVM"
at2=$(rounds_done "$LOG")
log "killing checkpoint after $at2 of $total rounds: $(du -sh "$T/img2" | cut -f1)"
has_result "$LOG" && fail "the run printed a result although it was checkpointed and killed"

ckpt_restore "$T/img2"
[[ $RESTORED_PID == "$JVM" ]] || fail "restored pid $RESTORED_PID, dumped $JVM"
wait_for 100 "the restored run to finish" has_result "$LOG"
got=$(result_of "$LOG")
[[ $got == "$want" ]] || fail "restored run printed result $got, the uninterrupted run $want"
n=$(rounds_done "$LOG")
((n == total)) || fail "the restored run logged $n rounds, expected $total"
assert_gone "$JVM"
log "restored run: result $got after all $n rounds"

# The earlier checkpoint: the JVM went on writing its MAP_SHARED hsperfdata
# file after it, and deleted the file when it exited. That file is the
# program's own state and ckpt does not save its content (the file is the
# file): the restore must refuse, naming it, and create nothing.
ckptctl_run restore "$T/img1" && fail "restore of the --leave-running checkpoint succeeded, but the JVM's shared hsperfdata file it maps is gone"
grep -q "shared mapped file /tmp/hsperfdata_[^/]*/$JVM" "$ERR" ||
	fail "refusal does not name the JVM's hsperfdata file: $(cat "$ERR")"
assert_restore_left_nothing "$T/tree.before"
log "restore of the --leave-running checkpoint refused: $(tail -n 1 "$ERR")"
pass
