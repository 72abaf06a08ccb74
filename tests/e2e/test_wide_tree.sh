#!/bin/bash
# SPDX-License-Identifier: MIT
# A wide tree: python3 with 100 children, each holding 64 KiB of its own
# random bytes and a counter, answering its parent over pipes every 200 ms.
# Dumped (killing) and restored: every child at its pid under the same
# parent, its bytes and its counter as dumped, the parent's checks going on.
# From 64 tasks on the restorer puts its own memory in huge pages before
# it forks the tree (restorer/tree.c, huge_pages_for_forks): the tasks start
# as forks of it, and this is that path. While the tasks are held in their
# setup, none keeps the buffer it put its own pages in place through, and
# no child holds the other children's images (restorer/task.c, "what a fork
# hands down"): the root, which forked them all, holds all of them; no task
# maps the libraries of the network lock (lib/netlock.c loads them).
. "$(dirname "$0")/lib.sh"

N=100
D=$T/wide
mkdir -p "$D"
diag_add "$D/log"
start_workload ROOT "$D/ready" -- "$PYTHON" "$WLSRC/widetree.py" "$N" "$D/log" "$D/ready"
KIDS=$(sed -n 2p "$D/ready")
(($(wc -w <<<"$KIDS") == N)) || fail "$N children expected, ready says: $KIDS"
wait_lines "$D/log" 3 20
grep -q BAD "$D/log" && fail "the tree is wrong before the dump: $(grep -m1 BAD "$D/log")"

# shellcheck disable=SC2086
pids_snapshot "$ROOT" $KIDS >"$T/tree.before"
ckpt_dump "$ROOT" "$D/img"
# shellcheck disable=SC2086
assert_gone "$ROOT" $KIDS
before=$(line_count "$D/log")

# A batch of remote calls the kernel refuses, in the third task of a group
# whose batches run at the same time (tasks_batch_each, restorer/rcall.c):
# the restore names that task and call, after the batches around it ran to
# their end, and leaves nothing.
if CKPT_FAULT=rqueue-task-einval ckptctl_run restore "$D/img"; then
	fail "rqueue-task-einval: restore succeeded despite a refused prctl"
fi
failed=$(grep -oE "pid [0-9]+: prctl\(PR_SET_PDEATHSIG, 1000\): Invalid argument" "$ERR" |
	grep -oE "[0-9]+" | head -n 1)
[[ -n $failed ]] || fail "rqueue-task-einval: the error does not name the task and the call: $(cat "$ERR")"
grep -q "^$failed " "$T/tree.before" || fail "rqueue-task-einval: pid $failed is not of the tree"
assert_restore_left_nothing "$T/tree.before"
log "rqueue-task-einval: $(head -c 200 "$ERR")"

# Held in the tasks' setup (every task forked, each child's own pages in
# the areas it shares with its parent): no task keeps the 8 MiB buffer it
# read them through (restorer/cow.c): 101 of them held at once were 800 MiB,
# 10,000 would be 80 GiB.
rm -f "$T/go" "$T/go.paused"
CKPT_PAUSE=restore-task-setup:$T/go timeout -k 5 60 "$CKPTCTL" restore "$D/img" --json -vv \
	>"$T/restore.out" 2>"$T/restore.err" &
RPID=$!
TRACKED+=("$ROOT")
wait_for 20 "the restored tasks to pause in their setup" test -e "$T/go.paused"
held=0
for p in $ROOT $KIDS; do
	# libnftables and the five libraries it needs: 31 areas every fork
	# copies, loaded only for the network lock of TCP connections
	# (lib/netlock.c), which this tree has none of
	grep -qE 'lib(nftables|nftnl|mnl|xtables|jansson|gmp)\.so' "/proc/$p/maps" &&
		fail "pid $p maps the libraries of the network lock: $(grep -oE '[^/]*lib(nftables|gmp)[^ ]*' "/proc/$p/maps" | sort -u | tr '\n' ' ')"
	# areas of exactly 8 MiB asking for huge pages (lib/thp.h: thp_map)
	n=$(awk '/^Size:/ { size = $2 } /^VmFlags:/ { if (size == 8192 && / hg( |$)/) n++ }
		END { print n + 0 }' "/proc/$p/smaps" 2>/dev/null) || n=0
	held=$((held + n))
done
# where the tasks' images are (restorer/images.c load_tasks, -vv)
arena=$(grep -oE "images of $((N + 1)) tasks: [0-9]+ KiB at 0x[0-9a-f]+-0x[0-9a-f]+" "$T/restore.err") ||
	fail "the restorer did not say where the tasks' images are: $(grep -m3 images: "$T/restore.err")"
read -r arena_kib arena_lo arena_hi < <(sed -E 's/.*: ([0-9]+) KiB at (0x[0-9a-f]+)-(0x[0-9a-f]+)/\1 \2 \3/' <<<"$arena")
# KiB of them in memory in pid $1
arena_rss() {
	local s k kib=0
	while read -r s k; do
		((0x$s >= arena_lo && 0x$s < arena_hi)) && kib=$((kib + k))
	done < <(awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); s = r[1] } /^Rss:/ { print s, $2 }' \
		"/proc/$1/smaps")
	echo "$kib"
}
root_kib=$(arena_rss "$ROOT")
((root_kib * 10 >= arena_kib * 9)) || fail "the root holds $root_kib KiB of the $arena_kib KiB of images"
most=0
for p in $KIDS; do
	k=$(arena_rss "$p")
	((k > most)) && most=$k
done
# its own, the root's, and those of the siblings whose pages the root held
# for it (restorer/cow.c, stages): python3's children share pages among
# themselves that the root no longer has; a few of the 101 tasks' (one run
# of this test: 2 to 9 tasks' worth, about 48 KiB each). Each child held all
# of them before.
((most * 4 <= arena_kib)) ||
	fail "a child holds $most KiB of the $arena_kib KiB of the tasks' images (its own, the root's and a few siblings' expected)"
log "images: $arena_kib KiB, the root holds $root_kib KiB, a child at most $most KiB"
touch "$T/go"
wait "$RPID" || { cat "$T/restore.err"; fail "restore failed"; }
((held == 0)) || fail "$held tasks held a buffer of 8 MiB in huge pages while the tree was made"
RESTORED_PID=$(json_get "$T/restore.out" root_pid) || fail "no root_pid in: $(cat "$T/restore.out")"
[[ $RESTORED_PID == "$ROOT" ]] || fail "restored root pid $RESTORED_PID, dumped $ROOT"
grep -q "MiB of our memory in huge pages for $((N + 1)) forks" "$T/restore.err" ||
	fail "the restorer did not take the huge-page path for $((N + 1)) tasks"
# The children are in the root's group from their fork on: no round of
# groups wakes them (restorer/task.c task_in_phase)
for phase in "making process groups" "joining process groups"; do
	grep -qE "tasks done $phase in [0-9.]+ s \(0 taking part\)" "$T/restore.err" ||
		fail "$phase: $(grep -oE "tasks done $phase.*" "$T/restore.err" || echo "not logged")"
done
# shellcheck disable=SC2086
assert_same_pids "$T/tree.before" "$ROOT" $KIDS
wait_lines "$D/log" $((before + 3)) 20
tail -n +$((before + 1)) "$D/log" | grep -m1 BAD && fail "after the restore: $(grep -m1 BAD "$D/log")"
log "$N children answered $(($(line_count "$D/log") - before)) rounds after the restore"
kill_tree "$ROOT"
pass
