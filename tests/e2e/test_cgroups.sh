#!/bin/bash
# SPDX-License-Identifier: MIT
# Cgroups of every task and thread (docs/fidelity.md). A task in another
# cgroup namespace is refused at dump and left running. A tree of two
# processes (tests/workloads/cgtree.c), the child with three threads, put
# into cgroups of a v1 hierarchy (per thread: the child's threads in three
# different cgroups) and of the v2 one (the child in a threaded subtree,
# one of its threads in another threaded cgroup). After dump and restore,
# /proc/PID/task/TID/cgroup of every task and thread is what it was. Then:
# a restore whose cgroup was removed is refused before anything is made,
# naming it; --cgroups=caller puts the tree under the restorer's own
# cgroups, keeping the structure below the root's cgroup, and refuses what
# it cannot map (a thread outside the root's cgroup, a threaded subtree);
# a restore through ckptd puts the tasks back in their saved cgroups, not
# in ckptd's, and for a user writes the cgroup files with the user's rights
# only (refused naming the file, then done once root delegates the cgroup);
# forged cgroup fields are refused by the verifier. Every cgroup the test
# made is removed at exit.
. "$(dirname "$0")/lib.sh"
. "$CKPT_SRC/tests/e2e/ckptd_lib.sh"

# mount point of a cgroup hierarchy: v2, or the v1 one with controller $1
cg_mount()
{
	awk -v want="$1" '{
		split($0, h, " - "); split(h[2], f, " ")
		if (want == "" && f[1] == "cgroup2") { print $5; exit }
		if (want != "" && f[1] == "cgroup") {
			n = split(f[3], o, ",")
			for (i = 1; i <= n; i++) if (o[i] == want) { print $5; exit }
		}
	}' /proc/self/mountinfo
}

V2=$(cg_mount "")
V1=''
for ctl in pids freezer cpu; do
	V1=$(cg_mount "$ctl")
	[[ -n $V1 ]] && break
done
[[ -n $V2 ]] || fail "no cgroup2 mount in /proc/self/mountinfo"
[[ -n $V1 ]] || fail "none of the v1 controllers pids, freezer, cpu is mounted"
NAME=ckpt-e2e-cg.$$
log "v1 hierarchy ($ctl) at $V1, v2 at $V2; test cgroups $NAME"

# remove every cgroup this test made, deepest first, once its tasks are gone
cg_remove()
{
	local d i
	for d in $(find "$V1/$NAME" "$V2/$NAME" -depth -type d 2>/dev/null); do
		for ((i = 0; i < 100; i++)); do
			rmdir "$d" 2>/dev/null || [[ ! -d $d ]] && break
			sleep 0.05
		done
		[[ -d $d ]] && log "warning: cannot remove cgroup $d"
	done
}
cg_exit()
{
	local rc=$? root
	trap - EXIT
	for root in "${TRACKED[@]}"; do
		kill_tree "$root"
	done
	TRACKED=()
	cg_remove
	(exit "$rc")
	cleanup
}
trap cg_exit EXIT

mkdir -p "$V1/$NAME/job/w1" "$V1/$NAME/job/w2" "$V1/$NAME/other" \
	"$V2/$NAME/job/thr/t1" "$V2/$NAME/job/thr/t2" "$V2/$NAME/job/w1" ||
	fail "cannot make the test cgroups"
echo threaded >"$V2/$NAME/job/thr/t1/cgroup.type" &&
	echo threaded >"$V2/$NAME/job/thr/t2/cgroup.type" || fail "cannot make a threaded v2 subtree"

# cg_snapshot ROOT: "pid tid hierarchy:path ..." of every thread of the tree
cg_snapshot()
{
	local p tid
	for p in $(tree_pids "$1"); do
		for tid in $(ls "/proc/$p/task" | sort -n); do
			echo "$p $tid $(sort "/proc/$p/task/$tid/cgroup" | cut -d: -f2- | tr '\n' ' ')"
		done
	done
}

# assert_same_cgroups BEFORE ROOT
assert_same_cgroups()
{
	cg_snapshot "$2" >"$T/cg.after"
	diff -u "$1" "$T/cg.after" >"$T/cg.diff" || { cat "$T/cg.diff"; fail "cgroups differ after restore"; }
	log "same cgroups for $(wc -l <"$1") threads"
}

# start_tree NAME V2CHILD V2THREAD V1THREAD3: the cgtree, root in job (v1
# and v2), the child's main thread in v1 job/w1, its second thread in
# job/w2, its third in V1THREAD3; the child in v2 V2CHILD, its second
# thread in v2 V2THREAD (a threaded cgroup) unless empty
start_tree()
{
	local name=$1 v2child=$2 v2thread=$3 v1third=$4 log=$T/$1.log child tids
	start_workload ROOT "$T/$name.ready" -- "$WL/cgtree" "$log" "$T/$name.ready"
	echo "$ROOT" >"$V1/$NAME/job/tasks" && echo "$ROOT" >"$V2/$NAME/job/cgroup.procs" ||
		fail "cannot move $ROOT into the test cgroups"
	child=$(awk -v r="$ROOT" '$1 == "thread" && $2 != r { print $2; exit }' "$log")
	[[ -n $child ]] || fail "the child did not log its threads"
	mapfile -t tids < <(awk -v c="$child" '$1 == "thread" && $2 == c { print $3 }' "$log" | sort -n)
	((${#tids[@]} == 3)) || fail "the child has ${#tids[@]} threads logged, not 3"
	[[ ${tids[0]} == "$child" ]] || fail "the child's main thread $child did not log first"
	echo "$child" >"$V2/$NAME/$v2child/cgroup.procs" || fail "cannot move $child to v2 $v2child"
	[[ -z $v2thread ]] || echo "${tids[1]}" >"$V2/$NAME/$v2thread/cgroup.threads" ||
		fail "cannot move thread ${tids[1]} to v2 $v2thread"
	echo "${tids[0]}" >"$V1/$NAME/job/w1/tasks" && echo "${tids[1]}" >"$V1/$NAME/job/w2/tasks" &&
		echo "${tids[2]}" >"$V1/$NAME/$v1third/tasks" || fail "cannot move the child's threads (v1)"
	CHILD=$child
	THREADS=("${tids[@]}")
}

# ticks LOG TID: lines the thread logged so far
ticks() { awk -v t="$2" '$1 == "tick" && $3 == t' "$1" | wc -l; }
# assert_all_run LOG ROOT: every thread of the tree logs again
assert_all_run()
{
	local log=$1 p tid n
	for p in $(tree_pids "$2"); do
		for tid in $(ls "/proc/$p/task"); do
			n=$(ticks "$log" "$tid")
			wait_for 10 "thread $tid to run after restore" eval "(( \$(ticks $log $tid) > n ))"
		done
	done
}

# ---- 0. a task in another cgroup namespace: refused at dump, left running -------
start_workload NS "$T/ns.ready" -- unshare --cgroup "$WL/sleeper" nanosleep "$T/ns.log" "$T/ns.ready" 1
[[ $(readlink "/proc/$NS/ns/cgroup") != "$(readlink /proc/self/ns/cgroup)" ]] ||
	fail "unshare --cgroup did not make a cgroup namespace"
ckptctl_run dump "$NS" -D "$T/ns.img" && fail "a task in another cgroup namespace was dumped"
grep -q "pid $NS: thread $NS is in cgroup namespace [0-9]*, the dumper in [0-9]*: cgroup namespaces are not supported" "$ERR" ||
	{ cat "$ERR"; fail "the refusal does not name the cgroup namespace"; }
assert_tree_running "$NS"
kill_tree "$NS"
untrack "$NS"

# ---- 1. exact (the default): every thread back in its cgroups ----------------
start_tree a job/thr/t1 job/thr/t2 other
cg_snapshot "$ROOT" >"$T/a.cg"
log "before: $(tr '\n' '|' <"$T/a.cg")"
grep -q " $ctl[^ ]*:/$NAME/job/w2 " "$T/a.cg" || fail "thread ${THREADS[1]} is not in v1 job/w2"
grep -q " :/$NAME/job/thr/t2 " "$T/a.cg" || fail "thread ${THREADS[1]} is not in v2 job/thr/t2"
tree_snapshot "$ROOT" >"$T/a.tree"
A=$ROOT
ckpt_dump "$A" "$T/a.img"
assert_tree_gone "$A"
"$CKPTCTL" show "$T/a.img" >"$T/a.json" || fail "ckptctl show failed"
grep -q "$NAME/job/w2" "$T/a.json" || fail "the images do not hold the cgroup paths"
grep -qE "$V1|$V2" "$T/a.json" && fail "the images hold a cgroup mount path"
ckpt_restore "$T/a.img"
assert_same_tree "$T/a.tree" "$RESTORED_PID"
assert_same_cgroups "$T/a.cg" "$RESTORED_PID"
assert_all_run "$T/a.log" "$RESTORED_PID"
kill_tree "$RESTORED_PID"
untrack "$RESTORED_PID"
assert_tree_gone "$A"

# ---- forged cgroup fields: refused by the verifier, nothing made ---------------
# (13.22: CoreEntry.threads[0].cgroups[0]; .1 controllers, .2 path)
for forged in "2 s:$NAME/../../etc" "2 s:/$NAME/job" "2 s:$NAME//job" "2 s:$NAME/job/" \
	"1 s:pids/../x" "2 s:$(printf 'a%.0s' {1..4100})"; do
	rm -rf "$T/forged"
	cp -a "$T/a.img" "$T/forged"
	"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" set "$T/forged" "core-$A.img" 0 "13.22.${forged%% *}" \
		"${forged#* }" || fail "imgforge failed"
	ckptctl_run restore "$T/forged" && fail "a restore with forged cgroup field ${forged:0:40} succeeded"
	grep -qE "core-$A.img.*field threads\[0\]\.cgroups\[0\]\.(path|controllers): " "$ERR" ||
		{ cat "$ERR"; fail "forged cgroup field ${forged:0:40}: no field named in the error"; }
	log "forged ${forged:0:40}: $(grep -o 'cgroups\[0\][^;]*' "$ERR" | head -n 1)"
	assert_restore_left_nothing "$T/a.tree"
done

# ---- 2. through ckptd: the saved cgroups, not ckptd's -------------------------
start_ckptd
mkdir -p "$V1/$NAME/ckptd" "$V2/$NAME/ckptd"
for p in $(tree_pids "$CKPTD_PID"); do
	for tid in $(ls "/proc/$p/task"); do echo "$tid" >"$V1/$NAME/ckptd/tasks"; done
	echo "$p" >"$V2/$NAME/ckptd/cgroup.procs"
done
ckpt_restore "$T/a.img"
grep -q '"job_id"' "$OUT" || fail "the restore did not go through ckptd"
assert_same_cgroups "$T/a.cg" "$RESTORED_PID"
kill_tree "$RESTORED_PID"
untrack "$RESTORED_PID"
assert_tree_gone "$A"

# ---- 2b. a user's restore through ckptd moves with the user's rights ----------
# The user's program is in a v1 cgroup of root's: ckpt-restore, run as the
# user, may not write its `tasks` (no capability is raised for it) and
# says so; once root delegates the cgroup (chown), the same restore works.
# (ckptd stays in /$NAME/ckptd: ckpt-restore runs in the client's cgroups,
# else a v2 move out of ckptd's would need the root's cgroup.procs, which
# the user may not write)
ckptd_user_add UUID ckpt-cg-u
trap 'rc=$?; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cg_exit' EXIT
chmod 0711 "$T"
install -d -m 0755 "$T/bin" && install -m 0755 "$WL/sleeper" "$T/bin/sleeper"
mkdir -m 0700 "$T/u" && chown ckpt-cg-u: "$T/u"
mkdir "$V1/$NAME/user"
(
	cd "$T/u" || exit 1
	setsid setpriv --reuid=ckpt-cg-u --regid="$(id -g ckpt-cg-u)" --clear-groups --inh-caps=-all -- \
		"$T/bin/sleeper" nanosleep "$T/u/p.log" "$T/u/p.ready" 1 </dev/null >/dev/null 2>&1 &
)
wait_for 10 "the user's program" test -s "$T/u/p.ready"
read -r U <"$T/u/p.ready"
TRACKED+=("$U")
echo "$U" >"$V1/$NAME/user/tasks" || fail "cannot move $U into $V1/$NAME/user"
tree_snapshot "$U" >"$T/u.tree"
cg_snapshot "$U" >"$T/u.cg"
mkdir -m 0700 "$T/u/ck" && chown ckpt-cg-u: "$T/u/ck"
user_ckptctl ckpt-cg-u dump "$U" -D "$T/u/ck" --json || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$U"
user_ckptctl ckpt-cg-u restore "$T/u/ck" --json && fail "the user's restore wrote a cgroup file of root's"
grep -q "stage cgroups: pid $U: thread $U: cannot move it into cgroup $ctl[^ ]*:/$NAME/user: $V1/$NAME/user/tasks: Permission denied" "$ERR" ||
	{ cat "$ERR"; fail "the refusal does not name the pid and the cgroup file"; }
assert_restore_left_nothing "$T/u.tree"
chown ckpt-cg-u: "$V1/$NAME/user" "$V1/$NAME/user/tasks" "$V1/$NAME/user/cgroup.procs"
rm -f "$T/u/ck/restore.log"
user_ckptctl ckpt-cg-u restore "$T/u/ck" --json || fail "the user's restore into a delegated cgroup failed: $(cat "$ERR")"
RESTORED_PID=$(json_get "$OUT" root_pid) && TRACKED+=("$RESTORED_PID")
assert_same_cgroups "$T/u.cg" "$RESTORED_PID"
kill_tree "$RESTORED_PID"
untrack "$RESTORED_PID"
assert_tree_gone "$U"
stop_ckptd

# ---- 3. a cgroup removed since the dump: refused before anything is made ------
rmdir "$V1/$NAME/other" || fail "cannot remove $V1/$NAME/other"
ckptctl_run restore "$T/a.img" && fail "a restore into a removed cgroup succeeded"
grep -q "pid $CHILD (thread ${THREADS[2]}): cgroup $ctl[^ ]*:/$NAME/other does not exist" "$ERR" ||
	{ cat "$ERR"; fail "the refusal does not name the pid, thread and cgroup"; }
grep -q -- "--cgroups=caller" "$ERR" || fail "the refusal does not name --cgroups=caller"
grep -q "stage verify" "$ERR" || fail "the refusal did not come from stage verify"
assert_restore_left_nothing "$T/a.tree"
mkdir "$V1/$NAME/other"

# ---- 4. --cgroups=caller --------------------------------------------------------
# restore_in CGROUP ARGS...: ckptctl restore run from v1 and v2 cgroup CGROUP
restore_in()
{
	local cg=$1
	shift
	CALLS=$((CALLS + 1))
	OUT=$T/ckptctl.$CALLS.out ERR=$T/ckptctl.$CALLS.err
	(
		echo "$BASHPID" >"$V1/$NAME/$cg/tasks" && echo "$BASHPID" >"$V2/$NAME/$cg/cgroup.procs" ||
			exit 99
		exec timeout -k 5 60 "$CKPTCTL" restore "$@"
	) >"$OUT" 2>"$ERR"
	RC=$?
	log "ckptctl restore $* (from cgroup $cg) -> exit $RC"
	return "$RC"
}
mkdir -p "$V1/$NAME/job2" "$V2/$NAME/job2"
# what --cgroups=caller cannot map is refused, naming it
restore_in job2 "$T/a.img" --cgroups=caller && fail "--cgroups=caller restored a thread outside the root's cgroup"
grep -q "thread ${THREADS[2]}): cgroup $ctl[^ ]*:/$NAME/other is outside the root task's cgroup /$NAME/job" "$ERR" ||
	{ cat "$ERR"; fail "the refusal does not name the thread outside the root's cgroup"; }
assert_restore_left_nothing "$T/a.tree"
[[ -d $V1/$NAME/job2/w1 || -d $V2/$NAME/job2/w1 ]] && fail "a refused restore made cgroups"

start_tree b job/thr/t1 job/thr/t2 job
B=$ROOT
ckpt_dump "$B" "$T/b.img"
assert_tree_gone "$B"
restore_in job2 "$T/b.img" --cgroups=caller && fail "--cgroups=caller restored a threaded v2 subtree"
grep -q "pid $CHILD: thread ${THREADS[1]} is in v2 cgroup /$NAME/job/thr/t2.*threaded" "$ERR" ||
	{ cat "$ERR"; fail "the refusal does not name the threaded v2 cgroup"; }
assert_restore_left_nothing "$T/a.tree"

start_tree c job/w1 "" job
cg_snapshot "$ROOT" >"$T/c.cg"
C=$ROOT
tree_snapshot "$C" >"$T/c.tree"
ckpt_dump "$C" "$T/c.img"
assert_tree_gone "$C"
# a restore failing after stage cgroups removes the cgroups it made
CKPT_FAULT=restore-memory restore_in job2 "$T/c.img" --cgroups=caller && fail "CKPT_FAULT=restore-memory: the restore succeeded"
grep -q "stage memory: injected fault" "$ERR" || { cat "$ERR"; fail "the restore did not fail in stage memory"; }
assert_restore_left_nothing "$T/c.tree"
[[ -d $V1/$NAME/job2/w1 || -d $V2/$NAME/job2/w1 ]] && fail "a failed --cgroups=caller restore left the cgroups it made"
restore_in job2 "$T/c.img" --cgroups=caller --json || { cat "$ERR"; fail "--cgroups=caller restore failed"; }
RESTORED_PID=$(json_get "$OUT" root_pid) || fail "no root_pid"
TRACKED+=("$RESTORED_PID")
assert_same_tree "$T/c.tree" "$RESTORED_PID"
sed "s|:/$NAME/job|:/$NAME/job2|g" "$T/c.cg" >"$T/c.cg.want"
assert_same_cgroups "$T/c.cg.want" "$RESTORED_PID"
[[ -d $V1/$NAME/job2/w2 && -d $V2/$NAME/job2/w1 ]] || fail "--cgroups=caller did not make the sub-cgroups"
assert_all_run "$T/c.log" "$RESTORED_PID"
kill_tree "$RESTORED_PID"
untrack "$RESTORED_PID"
assert_tree_gone "$C"

# through ckptd: the client's cgroups (ckptd and its worker are in others)
mkdir -p "$V1/$NAME/job3" "$V2/$NAME/job3"
start_ckptd
restore_in job3 "$T/c.img" --cgroups=caller --json || { cat "$ERR"; fail "--cgroups=caller restore through ckptd failed"; }
grep -q '"job_id"' "$OUT" || fail "the restore did not go through ckptd"
RESTORED_PID=$(json_get "$OUT" root_pid) || fail "no root_pid"
TRACKED+=("$RESTORED_PID")
sed "s|:/$NAME/job|:/$NAME/job3|g" "$T/c.cg" >"$T/c.cg.want3"
assert_same_cgroups "$T/c.cg.want3" "$RESTORED_PID"
stop_ckptd
pass
