#!/bin/bash
# SPDX-License-Identifier: MIT
# UDP-Lite sockets (lib/kinds/inet.c, the UDP code with IPPROTO_UDPLITE),
# tests/workloads/udplite.py, IPv4 and IPv6: bound and connected sockets
# keep their names, peers and checksum coverage (UDPLITE_SEND_CSCOV,
# UDPLITE_RECV_CSCOV); queued datagrams are read after restore with their
# sources; the connected socket still reaches its peer.
. "$(dirname "$0")/lib.sh"

D=$T/work
mkdir -p "$D"
LOG=$T/udplite.log
diag_add "$LOG"
start_workload W "$T/udplite.ready" -- "$PYTHON" "$WLSRC/udplite.py" "$D" "$LOG" "$T/udplite.ready"
ckpt_dump "$W" "$T/img"
assert_tree_gone "$W"
ckpt_restore "$T/img"
touch "$D/go"
wait_grep "$LOG" 'ALL OK|SOME FAILED' 30
grep -q 'ALL OK' "$LOG" || fail "$(grep FAIL "$LOG")"
pass
