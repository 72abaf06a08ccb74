#!/bin/bash
# SPDX-License-Identifier: MIT
# Socket options of TCP and UDP sockets (lib/kinds/inet_opts.c) and the
# states around them: tests/workloads/sockopts.py sets every option it knows
# (SO_PRIORITY, SO_BINDTODEVICE, SO_BUF_LOCK, SO_LINGER, TCP_KEEP*,
# TCP_CONGESTION, classic BPF filters locked or not...) on listeners, both
# ends of loopback connections and UDP sockets, IPv4 and IPv6; shuts UDP
# sockets down; keeps a TCP socket whose connection was reset and one whose
# connect was refused. After a dump and restore it reads everything back
# from inside the restored program: every value must be what it was.
# Refused: a socket with an eBPF filter would be (not tested: needs bpf()).
. "$(dirname "$0")/lib.sh"

D=$T/work
mkdir -p "$D"
LOG=$T/sockopts.log
diag_add "$LOG"
start_workload P "$T/ready" -- "$PYTHON" "$WLSRC/sockopts.py" "$D" "$LOG" "$T/ready"
grep -q '^setup' "$LOG" && fail "setting the options: $(grep '^setup' "$LOG")"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
ckpt_restore "$T/img"
touch "$D/go"
wait_grep "$LOG" 'ALL OK|SOME FAILED' 30
grep -q 'ALL OK' "$LOG" || fail "options differ after restore: $(grep FAIL "$LOG" | head -n 20)"
pass
