#!/bin/bash
# SPDX-License-Identifier: MIT
# File locks survive dump and restore exactly: flock (exclusive, on a
# description shared by parent and child; shared), POSIX record locks of
# two processes (write and read ranges, to EOF), OFD locks and a read lease
# are held again by the same pids on the same ranges (/proc/locks compared
# line by line), and another process is still locked out of each. A lock
# taken by someone else between the dump and the restore fails the restore
# with a message naming it, nothing left running, and the restore works
# once it is released. And sqlite3 (Python's module): a write transaction
# open across the checkpoint still keeps a second writer out, and commits
# after the restore.
. "$(dirname "$0")/lib.sh"

D=$T/files LOG=$T/locks.log
mkdir -p "$D"
diag_add "$LOG"

# the lines of /proc/locks on our files, without the lock numbers
locks_of()
{
	local inos="" f
	for f in flock.f posix.f ofd.f shared.f lease.f; do
		inos+="|:$(stat -c %i "$D/$f")"
	done
	grep -E " [0-9a-f]+:[0-9a-f]+(${inos#|}) " /proc/locks | sed 's/^[0-9]*: *//' | sort
}

# conflicts: another process cannot take any of the locks
conflicts()
{
	"$PYTHON" - "$D" <<'PY'
import fcntl, os, sys
d = sys.argv[1]
def blocked(what, f):
    try:
        f()
    except (BlockingIOError, PermissionError):
        return
    sys.exit(f"{what}: another process got it")
fd = os.open(d + "/flock.f", os.O_RDWR)
blocked("flock.f LOCK_SH", lambda: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB))
fd = os.open(d + "/shared.f", os.O_RDWR)
blocked("shared.f LOCK_EX", lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
fd = os.open(d + "/posix.f", os.O_RDWR)
blocked("posix.f read 50", lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 50))
blocked("posix.f write 120", lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120))
blocked("posix.f write 5000", lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 5000))
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 160)  # between the ranges: free
fd = os.open(d + "/ofd.f", os.O_RDWR)
blocked("ofd.f read 15", lambda: fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 15))
blocked("ofd.f write 40", lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 40))
PY
}

start_workload LK "$T/locks.ready" -- "$WL/locks" "$D" "$LOG" "$T/locks.ready"
KID=$(awk '$1 == "locked" { print $2 }' "$LOG")
tree_snapshot "$LK" >"$T/tree.before"
locks_of >"$T/locks.before"
(($(wc -l <"$T/locks.before") == 8)) || { cat "$T/locks.before"; fail "expected 8 locks before the dump"; }
conflicts || fail "the locks do not hold before the dump"

ckpt_dump "$LK" "$T/img"
assert_tree_gone "$LK"
[[ -z $(locks_of) ]] || fail "locks still held after the dump killed the tree: $(locks_of)"

# someone takes the flock meanwhile: the restore is refused, naming it
"$PYTHON" -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(60)' "$D/flock.f" "$T/taken" &
TAKER=$!
wait_for 10 "the other process to take the lock" test -e "$T/taken"
sums=$(image_sums "$T/img")
if ckptctl_run restore "$T/img"; then
	fail "the restore succeeded while another process held the flock of flock.f"
fi
grep -q "flock.f.*held by another process" "$ERR" || fail "unexpected error: $(cat "$ERR")"
log "refused: $(tail -n 1 "$ERR")"
assert_gone "$LK" "$KID"
[[ $(image_sums "$T/img") == "$sums" ]] || fail "the failed restore changed the images"
kill "$TAKER"
wait "$TAKER" 2>/dev/null

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$LK" ]] || fail "restored root pid $RESTORED_PID, dumped $LK"
assert_tree_running "$LK"
assert_same_tree "$T/tree.before" "$LK"
locks_of >"$T/locks.after"
diff -u "$T/locks.before" "$T/locks.after" || fail "the locks after the restore differ"
conflicts || fail "the locks do not hold after the restore"
lines=$(line_count "$LOG")
wait_lines "$LOG" $((lines + 4)) 10
grep -q "lease break" "$LOG" && fail "the lease was broken"
log "8 locks held again by the same pids"
kill_tree "$LK"

# sqlite3: a write transaction open across the checkpoint
DB=$T/db.sqlite
"$PYTHON" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("create table t (x)"); c.commit()' "$DB"
cat >"$T/writer.py" <<'PY'
import os, sqlite3, sys, time
db, log, ready, go = sys.argv[1:5]
c = sqlite3.connect(db, isolation_level=None)
c.execute("begin immediate")
for i in range(100):
    c.execute("insert into t values (?)", (i,))
with open(ready + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(ready + ".tmp", ready)
while not os.path.exists(go):
    time.sleep(0.05)
c.execute("commit")
with open(log, "a") as f:
    f.write("committed\n")
time.sleep(60)
PY
second_writer()
{
	"$PYTHON" -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    c.execute("begin immediate")
except sqlite3.OperationalError as e:
    print(e); sys.exit(3)
print(c.execute("select count(*) from t").fetchone()[0])' "$DB"
}
start_workload SQ "$T/sq.ready" -- "$PYTHON" "$T/writer.py" "$DB" "$T/sq.log" "$T/sq.ready" "$T/sq.go"
out=$(second_writer)
[[ $? == 3 && $out == "database is locked" ]] || fail "second writer before the dump: $out"
ckpt_dump "$SQ" "$T/sqimg"
assert_tree_gone "$SQ"
ckpt_restore "$T/sqimg"
[[ $RESTORED_PID == "$SQ" ]] || fail "restored root pid $RESTORED_PID, dumped $SQ"
out=$(second_writer)
[[ $? == 3 && $out == "database is locked" ]] || fail "a second writer got in after the restore: $out"
log "sqlite: a second writer is still locked out after the restore"
touch "$T/sq.go"
wait_grep "$T/sq.log" committed 10
out=$(second_writer)
[[ $out == 100 ]] || fail "after the commit the second writer sees: $out"
log "sqlite: the restored transaction committed its 100 rows"
pass
