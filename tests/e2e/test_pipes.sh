#!/bin/bash
# SPDX-License-Identifier: MIT
# Pipes and FIFOs (lib/kinds/pipe.c). A producer | filter | consumer tree
# (tests/workloads/pipeline.c) with data buffered in both pipes (the
# consumer is slow), one pipe with O_NONBLOCK ends, the other with a
# non-default size and a FD_CLOEXEC end:
#  - dumps failed by fault injection and a --leave-running dump consume
#    nothing: the pipeline goes on without a gap;
#  - the images hold both pipes' data, sizes and flags; restore faults
#    leave nothing behind; after restore (same pids) every record arrives
#    exactly once and in order (the consumer checks numbers and hashes);
#  - a FIFO opened O_RDWR, O_WRONLY and O_RDONLY by three processes, with
#    data in it, removed after the dump: recreated with its mode;
#  - `bash -c 'producer | filter | consumer'` with bash in the tree.
. "$(dirname "$0")/lib.sh"

[[ -x $WL/pipeline ]] || fail "$WL/pipeline not found: build first"

# pipe_report DIR: one line per pipe/FIFO entry of files.img:
# "TYPE END SIZE DATA_BYTES NONBLOCK PATH"
pipe_report()
{
	"$CKPTCTL" show "$1" files.img >"$T/show.json" || fail "ckptctl show $1 files.img failed"
	"$PYTHON" - "$T/show.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
docs = doc if isinstance(doc, list) else [doc]
for d in docs:
    for e in d.get("entries", []):
        p = e.get("pipe")
        if p:
            print(e["type"], p["end"], p["size"], len(p.get("data", "")) // 2,
                  1 if int(e.get("flags", 0)) & 0o4000 else 0, e["path"])
EOF
}

# check_log LOG: "ok N CSUM" lines, N growing by 100, no FAIL ("buffered"
# lines skipped); prints the last N.
check_log()
{
	awk '$1 == "buffered" { next }
	     $1 != "ok" { print "line " NR ": " $0; bad = 1; exit }
	     prev != "" && $2 != prev + 100 { print "line " NR ": " $2 " after " prev; bad = 1; exit }
	     { prev = $2 }
	     END { if (!bad) print prev; exit bad }' "$1"
}

# progress LOG WHAT: the consumer logs 3 more lines and the log is continuous.
progress()
{
	local lines last
	lines=$(line_count "$1")
	wait_lines "$1" $((lines + 3)) 15
	last=$(check_log "$1") || fail "$2: $last"
	log "$2: consumer at record $last, no gap"
}

last_record() { check_log "$1" 2>/dev/null || echo 0; }

# past LOG N: the consumer is past record N
past() { local l; l=$(check_log "$1") && ((l >= $2)); }

# drained LOG N WHAT: the consumer gets past record N (beyond all the data
# that was buffered in the pipes at the last dump: a record lost, repeated or
# damaged by the dump or the restore would have shown), without a gap.
drained()
{
	wait_for 30 "the consumer to pass record $2 ($3)" past "$1" "$2"
	local last
	last=$(check_log "$1") || fail "$3: $last"
	log "$3: consumer at record $last, past $2: everything buffered arrived once, in order"
}

# ---- the pipeline tree ---------------------------------------------------------
LOG=$T/tree.log
diag_add "$LOG"
start_workload P "$T/tree.ready" -- "$WL/pipeline" tree "$LOG" "$T/tree.ready"
progress "$LOG" "started"
tree_snapshot "$P" >"$T/tree.before"
[[ $(wc -l <"$T/tree.before") == 4 ]] || fail "the pipeline tree is not 4 processes: $(cat "$T/tree.before")"

# Failed dumps, some after the pipes' data was copied: nothing consumed.
for step in pipe-dump dump-fds dump-memory dump-write; do
	if CKPT_FAULT=$step ckptctl_run dump "$P" -D "$T/$step.img"; then
		fail "$step: dump succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: error does not name the step: $(cat "$ERR")"
	assert_tree_running "$P"
	progress "$LOG" "after the failed dump ($step)"
done

ckpt_dump "$P" "$T/lr.img" --leave-running
assert_tree_running "$P"
assert_same_tree "$T/tree.before" "$P"
progress "$LOG" "after --leave-running"
# pipe A holds at most 4096 records, B 8192: past them, nothing was consumed
drained "$LOG" $(($(last_record "$LOG") + 13000)) "after the failed dumps and --leave-running"

ckpt_dump "$P" "$T/tree.img"
assert_tree_gone "$P"
at_dump=$(last_record "$LOG")
pipe_report "$T/tree.img" >"$T/tree.pipes"
cat "$T/tree.pipes"
[[ $(grep -c '^FILE_PIPE' "$T/tree.pipes") == 4 ]] || fail "expected 4 pipe ends in files.img"
# pipe A: default size, O_NONBLOCK at both ends, data; pipe B: 256 KiB, data
awk '$1 == "FILE_PIPE" && $3 == 65536 && $4 > 0' "$T/tree.pipes" | grep -q . ||
	fail "pipe A (65536 bytes) has no saved data"
awk '$1 == "FILE_PIPE" && $3 == 262144 && $4 > 0' "$T/tree.pipes" | grep -q . ||
	fail "pipe B (262144 bytes) has no saved data"
[[ $(awk '$1 == "FILE_PIPE" && $3 == 65536 && $5 == 1' "$T/tree.pipes" | wc -l) == 2 ]] ||
	fail "pipe A's two ends are not both O_NONBLOCK"
[[ $(awk '$1 == "FILE_PIPE" && $3 == 262144 && $5 == 0' "$T/tree.pipes" | wc -l) == 2 ]] ||
	fail "pipe B's ends should be blocking"

image_sums "$T/tree.img" >"$T/sums"
for step in pipe-verify pipe-open; do
	if CKPT_FAULT=$step ckptctl_run restore "$T/tree.img" --json; then
		fail "$step: restore succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
done
image_sums "$T/tree.img" | diff -u "$T/sums" - || fail "the failed restores changed the images"

ckpt_restore "$T/tree.img"
assert_same_tree "$T/tree.before" "$P"
progress "$LOG" "after restore"
drained "$LOG" $((at_dump + 13000)) "after restore"
assert_tree_running "$P"
# the pipes the restorer made are dumped and restored like any others
ckpt_dump "$P" "$T/tree2.img"
assert_tree_gone "$P"
at_dump=$(last_record "$LOG")
ckpt_restore "$T/tree2.img"
assert_same_tree "$T/tree.before" "$P"
drained "$LOG" $((at_dump + 13000)) "after a second dump and restore"
assert_tree_running "$P"
kill_tree "$P"
untrack "$P"

# ---- a FIFO, opened O_RDWR (root), O_WRONLY (writer), O_RDONLY (reader) -------------
FLOG=$T/fifo.log
FIFO=$T/fifo
diag_add "$FLOG"
start_workload Q "$T/fifo.ready" -- "$WL/pipeline" fifo "$FIFO" "$FLOG" "$T/fifo.ready"
progress "$FLOG" "FIFO started"
tree_snapshot "$Q" >"$T/fifo.before"
if CKPT_FAULT=fifo-dump ckptctl_run dump "$Q" -D "$T/fifo-fault.img"; then
	fail "fifo-dump: dump succeeded despite CKPT_FAULT"
fi
assert_tree_running "$Q"
progress "$FLOG" "after the failed dump (fifo-dump)"
drained "$FLOG" $(($(last_record "$FLOG") + 2500)) "after the failed dump (fifo-dump)"
ckpt_dump "$Q" "$T/fifo.img"
assert_tree_gone "$Q"
at_dump=$(last_record "$FLOG")
pipe_report "$T/fifo.img" >"$T/fifo.pipes"
cat "$T/fifo.pipes"
for end in PIPE_RDWR PIPE_WRITE PIPE_READ; do
	[[ $(awk -v e="$end" -v p="$FIFO" '$1 == "FILE_FIFO" && $2 == e && $6 == p' "$T/fifo.pipes" | wc -l) == 1 ]] ||
		fail "FIFO: no single $end entry for $FIFO"
done
[[ $(awk '$1 == "FILE_FIFO" && $4 > 0' "$T/fifo.pipes" | wc -l) == 1 ]] ||
	fail "FIFO: its data is not saved exactly once"
rm -f "$FIFO"
image_sums "$T/fifo.img" >"$T/sums"
for step in fifo-verify fifo-open; do
	if CKPT_FAULT=$step ckptctl_run restore "$T/fifo.img" --json; then
		fail "$step: restore succeeded despite CKPT_FAULT"
	fi
	assert_restore_left_nothing "$T/fifo.before"
done
# the FIFO made again replaced, before its mode and owner are set
# (CKPT_PAUSE at fifo-remade), by a symlink to another FIFO, a hard link of
# it, or another FIFO made at the path: refused, that FIFO left as it was
# (mode, owner, and where it is)
rm -f "$FIFO" # made again by the failed fifo-open restore (documented)
for how in symlink hardlink fifo; do
	paused_restore fifo-remade "$T/fifo.img" --json
	[[ -p $FIFO ]] || fail "$how: paused at fifo-remade, but $FIFO was not made"
	swap_made "$how" "$FIFO" "$T/other"
	swap_refused "$how at $FIFO made again" "$FIFO" "FIFO $FIFO made again was replaced" "$T/fifo.before"
done
image_sums "$T/fifo.img" | diff -u "$T/sums" - || fail "the failed restores changed the images"
ckpt_restore "$T/fifo.img"
assert_same_tree "$T/fifo.before" "$Q"
[[ -p $FIFO ]] || fail "FIFO $FIFO was not made again"
[[ $(stat -c %a "$FIFO") == 640 ]] || fail "FIFO made again with mode $(stat -c %a "$FIFO"), not 640"
progress "$FLOG" "FIFO after restore"
drained "$FLOG" $((at_dump + 2500)) "FIFO after restore"
kill_tree "$Q"
untrack "$Q"

# ---- bash -c 'producer | filter | consumer' ---------------------------------------
BLOG=$T/bash.log
diag_add "$BLOG"
start_workload B "$T/bash.ready" -- bash -c \
	"'$WL/pipeline' producer | '$WL/pipeline' filter | '$WL/pipeline' consumer '$BLOG' '$T/bash.ready'"
progress "$BLOG" "bash pipeline started"
tree_snapshot "$B" >"$T/bash.before"
[[ $(wc -l <"$T/bash.before") == 4 ]] || fail "bash pipeline is not bash + 3: $(cat "$T/bash.before")"
ckpt_dump "$B" "$T/bash.img"
assert_tree_gone "$B"
at_dump=$(last_record "$BLOG")
[[ $(awk '$1 == "FILE_PIPE" && $4 > 0' <(pipe_report "$T/bash.img") | wc -l) == 2 ]] ||
	fail "bash pipeline: both pipes should hold data"
ckpt_restore "$T/bash.img"
assert_same_tree "$T/bash.before" "$B"
progress "$BLOG" "bash pipeline after restore"
drained "$BLOG" $((at_dump + 6500)) "bash pipeline after restore"
assert_tree_running "$B"
pass
