#!/bin/bash
# SPDX-License-Identifier: MIT
# A thread frozen inside a restartable-sequence critical section (the rseq
# area glibc registers for every thread) goes to the section's abort handler,
# as the kernel sends a thread preempted there: it never carries on in the
# middle of the section after the freeze. The workload (rseqcs) spends
# nearly all its time in one section that reads its cpu at the start and at
# the end, and logs BAD when a section ends on another cpu than it started on.
# While each --leave-running dump holds it frozen (CKPT_PAUSE at
# dump-finish), the test moves it to the other cpu: before the fix every
# such dump gave a BAD (the remote syscalls returned the thread to user mode
# outside the section, so the kernel only cleared rseq_cs). Then a killing
# dump and a restore, moved again: no BAD, and it carries on.
. "$(dirname "$0")/lib.sh"

(($(nproc) >= 2)) || fail "this test moves a thread between two cpus: $(nproc) cpu here"
LOG=$T/rseq.log
diag_add "$LOG"
start_workload RS "$T/rseq.ready" -- "$WL/rseqcs" "$LOG" "$T/rseq.ready"
wait_grep "$LOG" '^done 20 ' 20

# move PID to the cpu it is not on now
other_cpu() { local cpu; cpu=$(awk '{print $39}' "/proc/$1/stat"); echo $((cpu == 0 ? 1 : 0)); }
progress() { awk '$1 == "done" { n = $2 } END { print n + 0 }' "$LOG"; }

for i in 1 2 3 4; do
	rm -f "$T/go" "$T/go.paused"
	CKPT_PAUSE=dump-finish:$T/go timeout -k 5 60 "$CKPTCTL" dump "$RS" -D "$T/lr$i.img" \
		--leave-running >"$T/lr$i.out" 2>&1 &
	dumper=$!
	wait_for 30 "the dump to pause" test -e "$T/go.paused"
	taskset -p -c "$(other_cpu "$RS")" "$RS" >/dev/null || fail "taskset of pid $RS"
	touch "$T/go"
	wait "$dumper" || fail "--leave-running dump $i failed: $(cat "$T/lr$i.out")"
	taskset -p -c 0-1 "$RS" >/dev/null
	n=$(progress)
	wait_for 20 "sections after dump $i" eval '(($(progress) > n + 20))'
	grep BAD "$LOG" && fail "dump $i: a section carried on after the freeze (moved to another cpu)"
done
log "4 --leave-running dumps while moved to the other cpu: every section saw one cpu"

ckpt_dump "$RS" "$T/img"
assert_gone "$RS"
ckpt_restore "$T/img"
taskset -p -c "$(other_cpu "$RS")" "$RS" >/dev/null || fail "taskset of pid $RS after restore"
n=$(progress)
wait_for 20 "sections after restore" eval '(($(progress) > n + 20))'
grep BAD "$LOG" && fail "after restore: a section ended on another cpu than it started on"
assert_running "$RS"
log "dump and restore: it carries on, every section on one cpu"
pass
