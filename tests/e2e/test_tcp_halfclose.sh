#!/bin/bash
# SPDX-License-Identifier: MIT
# Half-closed TCP connections (FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK,
# CLOSING; lib/kinds/tcp_repair.c restore_fins), tests/workloads/halfclose.py:
#  - both ends in the tree (IPv4, IPv6): after restore each connection is in
#    the state it was, each side reads all the data it had coming then end
#    of file, and the CLOSE_WAIT side can still send and close;
#  - FIN_WAIT1 with its FIN sent and not acknowledged (the peer's packets
#    dropped by a table of the workload's until after the restore): the
#    FIN is retransmitted, acknowledged (FIN_WAIT2), data and end of file
#    arrive, the reply comes back;
#  - clients outside the tree, the connections held by the nftables lock
#    during the dump: one client shut its side down (server CLOSE_WAIT): it
#    gets the restored server's reply and end of file; the server shut its
#    side down for the other (server FIN_WAIT2): that client, still sending
#    after the restore, is read by the server to its end of file.
. "$(dirname "$0")/lib.sh"

# the workload's own tables (hctest_...) a failure left
drop_hc_tables()
{
	local t
	for t in $(nft list tables 2>/dev/null | awk -v t="hctest_" '$2 == "inet" && index($3, t) == 1 { print $3 }'); do
		nft delete table inet "$t"
	done
}
at_exit drop_hc_tables
HC=$WLSRC/halfclose.py
D=$T/work
mkdir -p "$D"

LOG=$T/pairs.log
diag_add "$LOG"
start_workload P "$T/pairs.ready" -- "$PYTHON" "$HC" pairs "$D" "$LOG" "$T/pairs.ready"
LOCKED_ROOTS+=("$P")
for s in "fw2 v4: FIN_WAIT2 CLOSE_WAIT" "fw1 v4: FIN_WAIT1 ESTABLISHED" "lastack v4: FIN_WAIT2 LAST_ACK" "closing v4: CLOSING FIN_WAIT2"; do
	grep -qx "$s" "$LOG" || fail "the workload did not reach '$s': $(cat "$LOG")"
done
ckpt_dump "$P" "$T/pairs.img"
assert_tree_gone "$P"
ckpt_restore "$T/pairs.img"
touch "$D/go"
wait_grep "$LOG" 'ALL OK|SOME FAILED' 60
grep -q 'ALL OK' "$LOG" || fail "pairs: $(grep FAIL "$LOG")"
kill_tree "$P"

# FIN_WAIT1 with the FIN sent, not acknowledged: the workload drops the
# peer's packets to the client until after the restore
LOG=$T/inflight.log
diag_add "$LOG"
rm -f "$D/go"
start_workload I "$T/inflight.ready" -- "$PYTHON" "$HC" inflight "$D" "$LOG" "$T/inflight.ready"
LOCKED_ROOTS+=("$I")
grep -qx "states FIN_WAIT1 CLOSE_WAIT" "$LOG" || fail "inflight: $(cat "$LOG")"
ckpt_dump "$I" "$T/inflight.img"
assert_tree_gone "$I"
ckpt_restore "$T/inflight.img"
touch "$D/go"
wait_grep "$LOG" '^restored' 10
grep -qx "restored FIN_WAIT1 CLOSE_WAIT" "$LOG" || fail "inflight: $(grep restored "$LOG")"
nft delete table inet "hctest_$I"
touch "$D/go2"
wait_grep "$LOG" 'ALL OK|FAIL' 30
grep -q 'ALL OK' "$LOG" || fail "inflight: $(grep FAIL "$LOG")"
kill_tree "$I"
rm -f "$D/go"

# clients outside the tree
PORT=$((20000 + RANDOM % 20000))
SLOG=$T/server.log
diag_add "$SLOG" "$D/peer.out" "$D/shut.out"
start_workload S "$T/server.ready" -- "$PYTHON" "$HC" server "$PORT" "$D" "$T/server.ready" "$SLOG"
LOCKED_ROOTS+=("$S")
setsid "$PYTHON" "$HC" client 127.0.0.1 "$PORT" peer "$D/peer.out" </dev/null >"$D/peer.err" 2>&1 &
disown $!
wait_grep "$SLOG" 'accepted 0'
setsid "$PYTHON" "$HC" client 127.0.0.1 "$PORT" shut "$D/shut.out" </dev/null >"$D/shut.err" 2>&1 &
disown $!
wait_grep "$SLOG" 'states FIN_WAIT2 CLOSE_WAIT'
wait_grep "$D/peer.out" eof
ckpt_dump "$S" "$T/server.img"
assert_tree_gone "$S"
lock_n=$(nft list tables | grep -c "ckpt_${S}_")
((lock_n == 1)) || fail "no lock table holds the connections"
sleep 0.5
grep -q . "$D/shut.out" && ! grep -qx shut "$D/shut.out" && fail "shut client: $(cat "$D/shut.out")"
ckpt_restore "$T/server.img"
touch "$D/go"
wait_grep "$SLOG" 'after FIN_WAIT2 CLOSE_WAIT' 10
wait_grep "$D/shut.out" '^got' 20
grep -qx "got b'reply'" "$D/shut.out" || fail "the client that shut down got $(grep got "$D/shut.out")"
wait_grep "$SLOG" 'shut client sent' 10
grep -qx "shut client sent b'hello'" "$SLOG" || fail "server: $(grep 'shut client' "$SLOG")"
touch "$D/peer.out.go"
wait_grep "$SLOG" 'peer client sent' 20
grep -qx "peer client sent b'late data'" "$SLOG" || fail "server: $(grep 'peer client' "$SLOG")"
nft list tables | grep -q "ckpt_${S}_" && fail "the restore left the lock"
pass
