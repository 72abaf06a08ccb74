#!/bin/bash
# SPDX-License-Identifier: MIT
# restore --new-pidns: a tree whose pids are all taken by other processes
# (started with clone3 set_tid) is refused by a plain restore, with a message
# naming --new-pidns, and restored with --new-pidns into a new pid namespace
# where every task has its saved pid: getpid(), getppid(), /proc/self/stat
# and /proc/self agree (pidcheck, pidtree.py); the python state (the counter
# exchanged with the child over pipes) continues. --json reports the root as
# we see it (root_pid) and in its namespace (root_pid_ns). The restored job
# is dumped again (from inside its namespace: same pids in the images) and
# restored once more. Killing the root ends the tree and the namespace's
# init exits. A restore failing in any of
# several stages leaves nothing behind (no task, no init).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

LOG=$T/pidtree.log
CLOG=$T/pidcheck.log
diag_add "$LOG" "$CLOG"
start_workload PT "$T/pt.ready" -- "$PYTHON" "$WLSRC/pidtree.py" "$LOG" "$T/pt.ready" "$WL/pidcheck" "$CLOG"
wait_lines "$LOG" 3
wait_lines "$CLOG" 3
tree_snapshot "$PT" >"$T/tree.before"
mapfile -t PIDS < <(awk '{print $1}' "$T/tree.before")
((${#PIDS[@]} == 3)) || fail "expected 3 tasks, got: $(cat "$T/tree.before")"
grep -q BAD "$LOG" "$CLOG" && fail "a BAD line before the dump"
ckpt_dump "$PT" "$T/img"
assert_tree_gone "$PT"
lines=$(line_count "$LOG")
clines=$(line_count "$CLOG")

# Every pid of the tree now belongs to a `sleep` (adopted by the reaper).
for p in "${PIDS[@]}"; do
	for ((try = 0; try < 100; try++)); do
		"$WL/setpid" "$p" sleep 1000 2>"$T/setpid.err" && break
		sleep 0.05
	done
	poll_for 3 eval "proc_stat $p && [[ \$S_COMM == sleep ]]" || fail "could not start a sleep with pid $p: $(cat "$T/setpid.err")"
	TRACKED+=("$p")
done
log "pids ${PIDS[*]} now belong to sleep processes"
strays_before=$(reaper_strays | sort -n | tr '\n' ' ')

# A plain restore is refused, and says that --new-pidns exists.
if ckptctl_run restore "$T/img" --json; then
	fail "restore succeeded although the pids are taken"
fi
log "refused: $(cat "$ERR")"
grep -q -- '--new-pidns' "$ERR" || fail "the refusal does not mention --new-pidns: $(cat "$ERR")"
for p in "${PIDS[@]}"; do
	proc_stat "$p" && [[ $S_COMM == sleep ]] || fail "the sleep holding pid $p was disturbed"
done

# Forced failures with --new-pidns leave no process and no namespace behind.
for stage in pids tree fds memory resume; do
	if CKPT_FAULT=restore-$stage ckptctl_run restore "$T/img" --json --new-pidns; then
		fail "restore --new-pidns with CKPT_FAULT=restore-$stage succeeded"
	fi
	grep -q "stage $stage" "$ERR" || fail "error does not name stage $stage: $(cat "$ERR")"
	poll_for 3 eval '[[ "$(reaper_strays | sort -n | tr "\n" " ")" == "$strays_before" ]]' ||
		fail "a failed --new-pidns restore (stage $stage) left processes: $(reaper_strays | tr '\n' ' ') (before: $strays_before)"
	poll_for 3 no_stray_restorer || fail "a ckpt-restore is left after the failed stage $stage"
done
log "failures in stages pids, tree, fds, memory, resume left nothing"

ckpt_restore "$T/img" --new-pidns
ROOT=$RESTORED_PID
ns_root=$(json_get "$OUT" root_pid_ns) || fail "--json has no root_pid_ns: $(cat "$OUT")"
INIT=$(json_get "$OUT" ns_init_pid) || fail "--json has no ns_init_pid: $(cat "$OUT")"
TRACKED+=("$INIT")
[[ $ns_root == "$PT" ]] || fail "root_pid_ns $ns_root, want the saved pid $PT"
[[ $ROOT != "$PT" ]] || fail "root_pid $ROOT is the saved pid: the caller's view was expected"
proc_stat "$INIT" && [[ $S_COMM == ckpt-nsinit ]] || fail "the namespace's init (pid $INIT) is '$S_COMM', not ckpt-nsinit"
proc_stat "$ROOT" && [[ $S_PPID == "$INIT" ]] || fail "the root's parent is $S_PPID, not the namespace's init $INIT"
grep -Eq '^CapPrm:[[:space:]]+0+$' "/proc/$INIT/status" || fail "the namespace's init keeps capabilities: $(grep ^Cap "/proc/$INIT/status" | tr '\n' ' ')"
grep -q "NSpid:.*[[:space:]]1$" "/proc/$INIT/status" || fail "pid $INIT is not pid 1 of its namespace: $(grep NSpid "/proc/$INIT/status")"
# every task has its saved pid in its namespace
for p in $(tree_pids "$ROOT"); do
	nspid=$(awk '/^NSpid:/ {print $NF}' "/proc/$p/status")
	[[ " ${PIDS[*]} " == *" $nspid "* ]] || fail "task $p has pid $nspid in its namespace, not one of ${PIDS[*]}"
	[[ $(readlink "/proc/$p/ns/pid") == "$(readlink "/proc/$INIT/ns/pid")" ]] || fail "task $p is not in the init's pid namespace: $(readlink "/proc/$p/ns/pid") vs $(readlink "/proc/$INIT/ns/pid")"
done
# the tree as seen from inside: same pids, parents, groups, sessions
nsenter -t "$INIT" -p -m -- "$PYTHON" - "$PT" >"$T/tree.after" <<'PY' || fail "nsenter into the namespace failed"
import os, sys
root = int(sys.argv[1])
def kids(p):
    out = []
    for t in os.listdir("/proc/%d/task" % p):
        out += [int(x) for x in open("/proc/%d/task/%s/children" % (p, t)).read().split()]
    return out
todo, rows = [root], []
while todo:
    p = todo.pop()
    s = open("/proc/%d/stat" % p).read()
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    rows.append((p, "-" if p == root else f[1], f[2], f[3], comm))
    todo += kids(p)
for r in sorted(rows):
    print("%d %s %s %s %s" % r)
PY
diff -u "$T/tree.before" "$T/tree.after" || fail "the tree inside the namespace differs from the dumped one"
log "inside its namespace the tree has its saved pids: $(tr '\n' ';' <"$T/tree.after")"

wait_lines "$LOG" $((lines + 5)) 15
wait_lines "$CLOG" $((clines + 5)) 15
grep BAD "$LOG" "$CLOG" && fail "a task saw a pid that was not its own after restore"
# the counter goes on where it stopped
"$PYTHON" - "$LOG" <<'PY' || fail "the python counter did not continue"
import re, sys
ns = [int(m.group(1)) for m in (re.match(r"ok n=(\d+)", l) for l in open(sys.argv[1])) if m]
bad = [(a, b) for a, b in zip(ns, ns[1:]) if b != a + 1]
sys.exit(1 if bad or not ns else 0)
PY
log "python counter and pid checks continue: $(tail -n 1 "$LOG"); $(tail -n 1 "$CLOG")"
for p in "${PIDS[@]}"; do
	proc_stat "$p" && [[ $S_COMM == sleep ]] || fail "the sleep holding pid $p outside was disturbed"
done

# A dump of the restored job works from inside its pid namespace: the
# images hold the pids the tasks see (the saved ones again), the init is
# not part of the job and exits once the job is gone; the new images
# restore with --new-pidns again (the pids are still taken out here).
ckpt_dump "$ROOT" "$T/img2"
poll_for 10 gone "$INIT" || fail "the namespace's init $INIT is still there after its job was dumped"
"$CKPTCTL" show "$T/img2" >"$T/img2.json" || fail "ckptctl show of the second checkpoint failed"
"$PYTHON" - "$T/img2.json" "${PIDS[@]}" <<'PY' || fail "the second checkpoint does not hold the saved pids ${PIDS[*]}"
import json, re, sys
text = open(sys.argv[1]).read()
want = sorted(int(p) for p in sys.argv[2:])
# every "pid": N of the pstree records
got = sorted(set(int(m) for m in re.findall(r'"pid":\s*(\d+)', text)))
print("pids in the images:", got)
sys.exit(0 if set(want) <= set(got) and 1 not in got else 1)
PY
lines=$(line_count "$LOG")
ckpt_restore "$T/img2" --new-pidns
ROOT=$RESTORED_PID
INIT=$(json_get "$OUT" ns_init_pid) || fail "--json has no ns_init_pid"
TRACKED+=("$INIT")
[[ $(json_get "$OUT" root_pid_ns) == "$PT" ]] || fail "second restore: root_pid_ns is not $PT: $(cat "$OUT")"
wait_lines "$LOG" $((lines + 5)) 15
grep BAD "$LOG" "$CLOG" && fail "after the second cycle a task saw a pid that was not its own"
"$PYTHON" - "$LOG" <<'PY' || fail "the python counter did not continue across the second cycle"
import re, sys
ns = [int(m.group(1)) for m in (re.match(r"ok n=(\d+)", l) for l in open(sys.argv[1])) if m]
sys.exit(1 if [(a, b) for a, b in zip(ns, ns[1:]) if b != a + 1] else 0)
PY
log "second cycle (dumped inside its pid namespace, restored with --new-pidns): $(tail -n 1 "$LOG")"

# Killing the root ends the job (the children die with it) and the init exits.
kill -KILL "$ROOT"
poll_for 10 gone "$INIT" || fail "the namespace's init $INIT is still there after the root was killed: $(ps -o pid,ppid,stat,comm --ppid "$INIT")"
log "root killed: the namespace's init exited"

# The same through ckptd (RestoreRequest.new_pidns); its root_pid is ours.
start_ckptd
lines=$(line_count "$LOG")
ckpt_restore "$T/img" --new-pidns
ROOT=$RESTORED_PID
TRACKED+=("$ROOT")
[[ $ROOT != "$PT" ]] || fail "through ckptd: root_pid $ROOT is the saved pid"
[[ $(awk '/^NSpid:/ {print $NF}' "/proc/$ROOT/status") == "$PT" ]] || fail "through ckptd: the root is not pid $PT in its namespace"
proc_stat "$ROOT" && INIT=$S_PPID
proc_stat "$INIT" && [[ $S_COMM == ckpt-nsinit ]] || fail "through ckptd: the root's parent $INIT is '$S_COMM', not ckpt-nsinit"
wait_lines "$LOG" $((lines + 5)) 15
grep BAD "$LOG" "$CLOG" && fail "through ckptd: a task saw a pid that was not its own"
# dumped through ckptd from inside its namespace too
ckpt_dump "$ROOT" "$T/img3"
poll_for 10 gone "$INIT" || fail "through ckptd: the namespace's init $INIT is still there after its job was dumped"
[[ $("$CKPTCTL" show "$T/img3" inventory.img 2>/dev/null | grep -o '"root_pid":[ ]*[0-9]*' | grep -o '[0-9]*$') == "$PT" ]] ||
	fail "through ckptd: the dump inside the namespace did not save root pid $PT: $("$CKPTCTL" show "$T/img3" inventory.img 2>&1 | head -c 300)"
log "through ckptd: restored into a new pid namespace and dumped from inside it; init gone with the job"
pass
