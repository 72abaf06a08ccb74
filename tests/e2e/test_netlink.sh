#!/bin/bash
# SPDX-License-Identifier: MIT
# Netlink sockets (lib/kinds/netlink.c). tests/workloads/nlsock.py: a
# NETLINK_ROUTE socket bound to RTMGRP_LINK|RTMGRP_IPV4_IFADDR with group 33
# joined, NETLINK_EXT_ACK, NETLINK_PKTINFO, NETLINK_NO_ENOBUFS, SO_RCVBUF
# and O_NONBLOCK, one never bound, one connected to the first's port id:
#  - a failed dump and --leave-running leave it working; restore faults
#    (netlink-verify, netlink-open) leave nothing behind;
#  - the images hold the protocol, port id, groups and options;
#  - a restore while another socket holds the port id fails naming it and
#    leaves nothing behind;
#  - after restore getsockname(), the options and the groups are the same,
#    and an RTM_GETLINK dump request is answered ("lo" in it), to our port id;
#    the connected one has the same name and peer, and a message it sends
#    without an address reaches the first from its port id;
#  - a socket with an unread answer queued is refused naming the pid, the
#    fd and why, and the program keeps running.
. "$(dirname "$0")/lib.sh"

LOG=$T/nl.log
D=$T/work
mkdir -p "$D"
diag_add "$LOG"
start_workload P "$T/nl.ready" -- "$PYTHON" "$WLSRC/nlsock.py" route "$D" "$LOG" "$T/nl.ready"
PORT=$(awk '/^port / {print $2}' "$LOG")
[[ $PORT =~ ^[0-9]+$ ]] || fail "no port id in the log: $(cat "$LOG")"
tree_snapshot "$P" >"$T/before"

CKPT_FAULT=netlink-dump ckptctl_run dump "$P" -D "$T/fault.img" && fail "dump succeeded despite CKPT_FAULT=netlink-dump"
grep -q netlink-dump "$ERR" || fail "the error does not name the step: $(cat "$ERR")"
assert_running "$P"
ckpt_dump "$P" "$T/lr.img" --leave-running
assert_running "$P"

ckpt_dump "$P" "$T/nl.img"
assert_tree_gone "$P"
"$CKPTCTL" show "$T/nl.img" files.img >"$T/show.json" || fail "ckptctl show files.img failed"
"$PYTHON" - "$T/show.json" "$PORT" >"$T/report" <<'PY' || fail "images: $(cat "$T/report")"
import json, sys
doc = json.load(open(sys.argv[1]))
docs = doc if isinstance(doc, list) else [doc]
nl = [e["netlink_sk"] for d in docs for e in d.get("entries", []) if "netlink_sk" in e]
print(nl)
bound = [n for n in nl if int(n.get("portid", 0)) == int(sys.argv[2])]
assert len(nl) == 3 and len(bound) == 1, "expected 3 netlink entries, one with port id %s" % sys.argv[2]
conn = [n for n in nl if n.get("connected")]
assert len(conn) == 1 and int(conn[0]["dst_portid"]) == int(sys.argv[2]), "the connected one: %s" % conn
b = bound[0]
assert int(b["protocol"]) == 0 and int(b["type"]) == 3, "protocol/type"
g = [int(x) for x in b["groups"]]
assert g[0] == 0x11 and g[1] == 1, "groups %s" % g
for k in ("ext_ack", "pktinfo", "no_enobufs"):
    assert b.get(k) is True, k
assert not b.get("cap_ack"), "cap_ack"
assert int(b["rcvbuf"]) == 600000, "rcvbuf %s" % b["rcvbuf"]
PY
cat "$T/report"

image_sums "$T/nl.img" >"$T/sums"
for step in netlink-verify netlink-open; do
	CKPT_FAULT=$step ckptctl_run restore "$T/nl.img" --json && fail "$step: restore succeeded despite CKPT_FAULT"
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/before"
done
image_sums "$T/nl.img" | diff -u "$T/sums" - || fail "the failed restores changed the images"

# The port id taken by another socket: the restore is refused, nothing is left.
"$PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((int(sys.argv[1]), 0))
open(sys.argv[2], "w").write("bound\n")
time.sleep(60)' "$PORT" "$T/taker.ready" &
TAKER=$!
wait_for 10 "the port id taker" test -s "$T/taker.ready"
ckptctl_run restore "$T/nl.img" --json && fail "restore succeeded with its port id $PORT taken"
grep -q "port id" "$ERR" && grep -q "$PORT" "$ERR" || fail "the refusal does not name the port id: $(cat "$ERR")"
assert_restore_left_nothing "$T/before"
kill "$TAKER"
wait "$TAKER" 2>/dev/null

ckpt_restore "$T/nl.img"
assert_same_tree "$T/before" "$P"
touch "$D/go"
wait_grep "$LOG" '^DONE' 20
grep -q FAIL "$LOG" && fail "the workload failed: $(grep -E 'FAIL|after|state' "$LOG")"
for what in state unbound getlink "unbound getlink" connected "connected send"; do
	grep -qx "ok $what" "$LOG" || fail "no 'ok $what' in the log: $(cat "$LOG")"
done
log "after restore: same port id, groups and options; RTM_GETLINK answered; the connected socket's messages reach its peer"
kill_tree "$P"
untrack "$P"

# Data queued: refused, the program keeps running.
QLOG=$T/queued.log
diag_add "$QLOG"
start_workload Q "$T/queued.ready" -- "$PYTHON" "$WLSRC/nlsock.py" queued "$QLOG" "$T/queued.ready"
ckptctl_run dump "$Q" -D "$T/queued.img" && fail "dump of a netlink socket with a queued answer succeeded"
log "refused: $(cat "$ERR")"
grep -q "pid $Q" "$ERR" && grep -qE "fd [0-9]+" "$ERR" && grep -q "queued for reading" "$ERR" ||
	fail "the refusal does not name the pid, the fd and the queue: $(cat "$ERR")"
[[ ! -e $T/queued.img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$Q"
lines=$(line_count "$QLOG")
wait_lines "$QLOG" $((lines + 3)) 10
pass
