#!/bin/bash
# SPDX-License-Identifier: MIT
# ICMP "ping" sockets (lib/kinds/inet.c, dump_ping), tests/workloads/ping.py:
# bound (echo identifier), connected (with IP_TTL) and unused sockets, IPv4
# and IPv6, keep their names and options and still get their echo replies;
# a socket with an echo reply not read yet is refused at dump, naming it,
# and its program carries on untouched; a restore whose restorer the ping
# group range leaves out fails saying so. net.ipv4.ping_group_range is opened
# to our group for the test and put back.
. "$(dirname "$0")/lib.sh"

RANGE_WAS=$(cat /proc/sys/net/ipv4/ping_group_range)
trap 'rc=$?; echo "$RANGE_WAS" >/proc/sys/net/ipv4/ping_group_range; (exit $rc); cleanup' EXIT
echo "0 0" >/proc/sys/net/ipv4/ping_group_range
D=$T/work
mkdir -p "$D"

LOG=$T/ping.log
diag_add "$LOG"
start_workload W "$T/ping.ready" -- "$PYTHON" "$WLSRC/ping.py" "$D" "$LOG" "$T/ping.ready"
ckpt_dump "$W" "$T/img"
assert_tree_gone "$W"
# the restorer (root, group 0) outside the ping group range: refused, nothing made
echo "1 0" >/proc/sys/net/ipv4/ping_group_range
ckptctl_run restore "$T/img" && fail "a restore outside the ping group range succeeded"
grep -q "ICMP ping socket .*ping_group_range" "$ERR" || fail "restore said: $(cat "$ERR")"
poll_for 3 no_stray_restorer || fail "a ckpt-restore process is still running after the failed restore"
assert_gone "$W"
echo "0 0" >/proc/sys/net/ipv4/ping_group_range
ckpt_restore "$T/img"
touch "$D/go"
wait_grep "$LOG" 'ALL OK|FAIL' 30
grep -q 'ALL OK' "$LOG" || fail "$(grep FAIL "$LOG")"
kill_tree "$W"

# an echo reply not read: refused, the program untouched
rm -f "$D/go"
LOG=$T/queued.log
diag_add "$LOG"
start_workload Q "$T/queued.ready" -- "$PYTHON" "$WLSRC/ping.py" "$D" "$LOG" "$T/queued.ready" queued
ckptctl_run dump "$Q" -D "$T/qimg" && fail "the dump of a ping socket with a reply queued succeeded"
grep -q "ICMP ping socket .*echo replies the program has not read" "$ERR" || fail "dump said: $(cat "$ERR")"
grep -q "pid $Q: fd " "$ERR" || fail "the refusal does not name the pid and fd: $(cat "$ERR")"
assert_running "$Q"
touch "$D/go"
wait_grep "$LOG" 'ALL OK|FAIL' 30
grep -q 'ALL OK' "$LOG" || fail "after the refused dump: $(grep FAIL "$LOG")"
pass
