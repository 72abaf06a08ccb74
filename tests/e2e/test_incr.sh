#!/bin/bash
# SPDX-License-Identifier: MIT
# Incremental dumps without soft-dirty (docs/incremental.md): a chain of
# three (--pre-dump, --pre-dump --parent, final --parent) of a program that
# between the dumps writes pages, maps a new area, unmaps one, moves one
# (mremap) and drops part of one (MADV_DONTNEED), reads it back and writes
# some of it (tests/workloads/incr.c). The restore of the last one equals
# the program's own hash at dump time; the second and third dumps save
# about what was written; a pre-dump is not restorable; a chain whose
# middle is missing is refused naming it, and so is a parent whose
# inventory.img is a FIFO or a symlink (at once, the tree running on). Then the same with a tree of
# three processes sharing memory copy-on-write (and a fourth forked after
# the first dump). `ckptctl check` reports the tracking; without
# asynchronous write-protect (simulated) a pre-dump fails clearly. The
# other cases: test_incr_cases.
. "$(dirname "$0")/lib.sh"

# every "P<i> <what> <round>" line is there for n processes
has_round() { local c; c=$(grep -c " $2\$" "$1" 2>/dev/null); ((${c:-0} >= $3)); }
wait_round() { wait_for 20 "$3 processes '$2' in $1" has_round "$@"; }

# sum_of LOG I ROUND / check_of LOG I: the hash logged
sum_of() { awk -v p="P$2" -v r="$3" '$1 == p && $2 == "sum" && $3 == r { print $4 }' "$1" | tail -n 1; }
check_of() { awk -v p="P$2" '$1 == p && $2 == "check" { print $3 }' "$1" | tail -n 1; }

# run_chain NAME NCHILD (with children, the root forks one more in round 1)
run_chain()
{
	local name=$1 nchild=$2 n=$(($2 + 1)) P LOG=$T/$1.log d=$T/$1 i saved unchanged saved1 n1
	n1=$((n + (nchild > 0)))
	diag_add "$LOG"
	start_workload P "$T/$name.ready" -- "$WL/incr" "$LOG" "$T/$name.ready" "$nchild"
	wait_round "$LOG" "ready 0" "$n"

	# 1. pre-dump: memory only, the tree runs on
	ckpt_dump "$P" "$d.1" --pre-dump --json
	[[ $(json_get "$OUT" pre_dump) == True ]] || fail "pre-dump: no pre_dump in $(cat "$OUT")"
	assert_tree_running "$P"
	full=$(($(json_get "$OUT" pages_bytes) / 4096))
	log "pre-dump: $full pages"
	# (children share the large area with the root copy-on-write: saved once)
	((full > 4000)) || fail "pre-dump saved only $full pages"
	ckptctl_run restore "$d.1" && fail "a pre-dump was restored"
	grep -q "pre-dump" "$ERR" || fail "restore of a pre-dump: unexpected error $(cat "$ERR")"
	pgrep -x ckpt-holder >/dev/null || fail "no ckpt-holder process after a pre-dump"

	# 2. changes, then an incremental pre-dump
	kill -USR1 "$P"
	wait_round "$LOG" "ready 1" "$n1"
	ckpt_dump "$P" "$d.2" --pre-dump --parent "$d.1" --json
	saved1=$(json_get "$OUT" pages_saved)
	unchanged=$(json_get "$OUT" pages_unchanged)
	log "second dump: $saved1 pages saved, $unchanged unchanged"
	# round 1 wrote 8 + 16 pages, moved 256, read back 128 dropped ones and
	# mapped 128 per process (plus the stack, heap and libraries' data)
	((saved1 < 800 * n1)) || fail "second dump saved $saved1 pages (changed: ~600 per process)"
	((unchanged > 4000)) || fail "second dump left only $unchanged pages to its parent"
	assert_tree_running "$P"

	# a parent whose inventory.img is a FIFO, then a symlink to /dev/zero:
	# refused at once naming it (not waited on for a writer, not read
	# forever), the tree and its tracking untouched (the final dump below
	# still goes on from $d.2)
	if ((nchild == 0)); then
		for bad in fifo symlink; do
			rm -rf "$d.bad" && cp -a "$d.2" "$d.bad" || fail "cannot copy $d.2"
			rm -f "$d.bad/inventory.img"
			if [[ $bad == fifo ]]; then
				mkfifo "$d.bad/inventory.img"
			else
				ln -s /dev/zero "$d.bad/inventory.img"
			fi
			CKPTCTL_TIMEOUT=30 ckptctl_run dump "$P" -D "$d.x" --parent "$d.bad" &&
				fail "a dump whose parent's inventory.img is a $bad succeeded"
			((RC != 124 && RC != 137)) || fail "a dump whose parent's inventory.img is a $bad hung (exit $RC)"
			grep -q "parent checkpoint [^:]*one.bad: inventory.img: " "$ERR" ||
				fail "parent's inventory.img as a $bad not named (once): $(cat "$ERR")"
			log "parent's inventory.img as a $bad: $(tail -n 1 "$ERR" | cut -c1-200)"
			[[ -e $d.x ]] && fail "the refused dump left $d.x"
			assert_tree_running "$P"
		done
		rm -rf "$d.bad"
	fi

	# 3. more changes, the final dump (kills the tree)
	kill -USR1 "$P"
	wait_round "$LOG" "ready 2" "$n1"
	ckpt_dump "$P" "$d.3" --parent "$d.2" --json
	saved=$(json_get "$OUT" pages_saved)
	unchanged=$(json_get "$OUT" pages_unchanged)
	log "final dump: $saved pages saved, $unchanged unchanged"
	((saved < 500 * n1)) || fail "final dump saved $saved pages (changed: ~300 per process)"
	((unchanged > 4000)) || fail "final dump left only $unchanged pages to its parent"
	assert_tree_gone "$P"

	# the middle of the chain missing: refused, naming it
	mv "$d.2" "$d.2.away"
	ckptctl_run restore "$d.3" && fail "restore without the middle of the chain succeeded"
	grep -q "$name.2" "$ERR" || fail "missing parent not named: $(cat "$ERR")"
	grep -qi "missing" "$ERR" || fail "missing parent: unexpected error $(cat "$ERR")"
	mv "$d.2.away" "$d.2"

	ckpt_restore "$d.3"
	kill -USR2 "$P"
	wait_round "$LOG" "check [0-9a-f]*" "$n1"
	for ((i = 0; i < n1; i++)); do
		[[ -n $(sum_of "$LOG" "$i" 2) ]] || fail "P$i: no sum of round 2"
		[[ $(check_of "$LOG" "$i") == "$(sum_of "$LOG" "$i" 2)" ]] ||
			fail "P$i: memory after restore $(check_of "$LOG" "$i") differs from the dump's $(sum_of "$LOG" "$i" 2)"
	done
	kill_tree "$P"
}

# the kernel of these machines has the tracking (and no soft-dirty)
ckptctl_run check || fail "ckptctl check failed: $(cat "$ERR")"
grep -q "^write tracking (incremental dumps) *present" "$OUT" || fail "check: no write tracking: $(cat "$OUT")"
grep -q "^soft-dirty" "$OUT" || fail "check: soft-dirty not reported: $(cat "$OUT")"

# a kernel without asynchronous write-protect (simulated): a clear error,
# the tree left running untouched
start_workload N "$T/nw.ready" -- "$WL/incr" "$T/nw.log" "$T/nw.ready"
CKPT_FAULT=incr-no-wp-async ckptctl_run dump "$N" -D "$T/nw" --pre-dump && fail "pre-dump without WP_ASYNC succeeded"
grep -q "UFFD_FEATURE_WP_ASYNC, Linux 6.7+" "$ERR" || fail "no clear error without WP_ASYNC: $(cat "$ERR")"
[[ -e $T/nw ]] && fail "a failed pre-dump left $T/nw"
assert_tree_running "$N"
grep -q " uw" "/proc/$N/smaps" && fail "a failed pre-dump left tracking registered"
kill_tree "$N"

run_chain one 0
run_chain tree 2
pass
