#!/bin/bash
# SPDX-License-Identifier: MIT
# MariaDB with its default io_uring (InnoDB's asynchronous I/O through
# liburing on Debian 12: "InnoDB: Using io_uring"), a server of its own in
# the test's directory (mariadb-install-db, unix socket, no network):
#  - it holds an io_uring instance (anon_inode:[io_uring] in /proc/PID/fd,
#    its rings mapped); its io_uring worker threads, when it has some, are
#    left out of the dump (kernel threads that never stop for ptrace);
#  - rows inserted, a --leave-running dump (the server goes on), then a
#    killing dump and a restore: same pid, the rows are there (mariadb
#    client), new rows and updates work and go through the restored ring
#    (its SQ head moves on when InnoDB flushes its pages);
#  - a clean shutdown of the restored server, then a new server on the same
#    data directory finds every row: what the restored ring wrote is on disk.
: "${CKPT_E2E_TIMEOUT:=150}"
. "$(dirname "$0")/lib.sh"

MARIADBD=$(PATH=$PATH:/usr/sbin command -v mariadbd) ||
	fail "mariadbd not installed (mariadb-server, packaging/install-deps.sh)"
command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null ||
	fail "mariadb-install-db / mariadb not installed (packaging/install-deps.sh)"

D=$T/data
SOCK=$T/mysql.sock
ERRLOG=$T/mariadb.err
diag_add "$ERRLOG" "$T/install.log"

sql() { mariadb --no-defaults -S "$SOCK" -uroot -N -B -e "$*"; }
server_up() { sql 'select 1' >/dev/null 2>&1; }
ring_fd() { for f in /proc/"$1"/fd/*; do [[ $(readlink "$f") == 'anon_inode:[io_uring]' ]] && basename "$f"; done; }
sq_head() { awk '$1 == "SqHead:" { print $2 }' "/proc/$1/fdinfo/$2"; }

# start_server VAR: a mariadbd on $D, pid in VAR, up and answering
start_server()
{
	rm -f "$T/mariadb.pid"
	start_workload "$1" "$T/mariadb.pid" -- "$MARIADBD" --no-defaults --datadir="$D" \
		--socket="$SOCK" --pid-file="$T/mariadb.pid" --skip-networking --user=root \
		--log-error="$ERRLOG" --innodb-buffer-pool-size=32M
	wait_for 60 "mariadbd answering on $SOCK" server_up
}

log "mariadb-install-db into $D"
mariadb-install-db --no-defaults --datadir="$D" --user=root --auth-root-authentication-method=normal \
	--skip-test-db >"$T/install.log" 2>&1 || fail "mariadb-install-db failed"
start_server M
grep -q 'InnoDB: Using io_uring' "$ERRLOG" || fail "InnoDB does not use io_uring: $(grep -i aio "$ERRLOG")"
RFD=$(ring_fd "$M")
[[ -n $RFD ]] || fail "no anon_inode:[io_uring] fd in /proc/$M/fd"
grep -q 'anon_inode:\[io_uring\]' "/proc/$M/maps" || fail "the ring is not mapped"
log "mariadbd pid $M: io_uring fd $RFD, $(ls /proc/"$M"/task | wc -l) threads ($(cat /proc/"$M"/task/*/comm | grep -c '^iou-') io_uring workers)"

# rows: 1..1000, v = 'row N', w = N * 3
sql "create database ck; create table ck.t (id int primary key, v varchar(40), w int) engine=innodb"
seq 1 1000 | awk '{ printf "insert into ck.t values (%d, \"row %d\", %d);\n", $1, $1, $1 * 3 }' |
	mariadb --no-defaults -S "$SOCK" -uroot || fail "insert failed"
[[ $(sql 'select count(*), sum(w) from ck.t') == $'1000\t1501500' ]] || fail "rows before the dump: $(sql 'select count(*), sum(w) from ck.t')"

ckpt_dump "$M" "$T/lr.img" --leave-running
assert_running "$M"
sql 'insert into ck.t values (1001, "row 1001", 3003)' || fail "insert after --leave-running failed"
[[ $(sql 'select count(*) from ck.t') == 1001 ]] || fail "rows after --leave-running: $(sql 'select count(*) from ck.t')"
log "--leave-running: server goes on"

HEAD0=$(sq_head "$M" "$RFD")
ckpt_dump "$M" "$T/img"
assert_tree_gone "$M"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$M" ]] || fail "restored pid $RESTORED_PID, dumped $M"
[[ $(readlink "/proc/$M/fd/$RFD") == 'anon_inode:[io_uring]' ]] || fail "fd $RFD is not the ring after restore"
HEAD1=$(sq_head "$M" "$RFD")
(( HEAD1 == HEAD0 )) || fail "ring SQ head $HEAD1 after restore, $HEAD0 before the dump"
[[ $(sql 'select count(*), sum(w) from ck.t') == $'1001\t1504503' ]] ||
	fail "rows after restore: $(sql 'select count(*), sum(w) from ck.t')"
log "restored: 1001 rows there, ring SQ head $HEAD1 as dumped"

# new writes, and InnoDB's page writes through the restored ring
seq 1002 3000 | awk '{ printf "insert into ck.t values (%d, \"row %d\", %d);\n", $1, $1, $1 * 3 }' |
	mariadb --no-defaults -S "$SOCK" -uroot || fail "insert after restore failed"
sql 'update ck.t set w = w + 1 where id % 2 = 0' || fail "update after restore failed"
sql 'set global innodb_max_dirty_pages_pct = 0; flush tables ck.t for export; unlock tables' ||
	fail "flush after restore failed"
ring_moved() { (( $(sq_head "$M" "$RFD") > HEAD1 )); }
wait_for 30 "InnoDB writing through the restored ring" ring_moved
EXPECT=$'3000\t'$((3 * 3000 * 3001 / 2 + 1500))
[[ $(sql 'select count(*), sum(w) from ck.t') == "$EXPECT" ]] ||
	fail "rows after new writes: $(sql 'select count(*), sum(w) from ck.t'), expected $EXPECT"
log "new writes work, ring SQ head $HEAD1 -> $(sq_head "$M" "$RFD")"

# a clean shutdown of the restored server, a new one on the same data
mariadb-admin --no-defaults -S "$SOCK" -uroot shutdown || fail "shutdown of the restored server failed"
assert_gone "$M"
grep -q 'Shutdown complete' "$ERRLOG" || fail "the restored server did not shut down cleanly"
start_server M2
[[ $(sql 'select count(*), sum(w) from ck.t') == "$EXPECT" ]] ||
	fail "rows after a restart: $(sql 'select count(*), sum(w) from ck.t'), expected $EXPECT"
sql 'check table ck.t' | grep -q 'status.*OK' || fail "check table: $(sql 'check table ck.t')"
log "restarted server finds every row"
mariadb-admin --no-defaults -S "$SOCK" -uroot shutdown
assert_gone "$M2"
log PASS
