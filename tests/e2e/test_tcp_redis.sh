#!/bin/bash
# SPDX-License-Identifier: MIT
# redis-server (TCP listeners on 127.0.0.1 and ::1, epoll, background
# threads) with a data set and a client connection opened before the dump
# that stays open across it (tests/workloads/respclient.py, RESP):
#  - a refused dump (a netlink socket held by redis's parent, an
#    unsupported family) and failed ones (fault injection after the
#    connection was locked and in repair mode) leave the connection and
#    the data working;
#  - after dump and restore (through ckptd) of the parent and redis, the
#    data set is all there, the old connection still works (same client
#    name), new clients connect over IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

REDIS=$(command -v redis-server) || fail "redis-server not installed (packaging/install-deps.sh)"
RESP=$WLSRC/respclient.py
PORT=$((20000 + RANDOM % 20000))
N=20000
D=$T/work
mkdir -p "$D"

cat >"$D/redis.conf" <<CONF
port $PORT
bind 127.0.0.1 ::1
save ""
appendonly no
daemonize no
protected-mode no
dir $D
logfile ""
CONF
# The tree: a python parent holding a generic netlink socket (a dump refuses it)
# until SIGUSR1, and redis-server its child.
cat >"$D/parent.py" <<'PY'
import os, signal, socket, subprocess, sys
ready, log, redis, conf = sys.argv[1:5]
nl = [socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)]  # NETLINK_GENERIC: refused
def on_usr1(*_):
    while nl:
        nl.pop().close()
    with open(log, "a") as f:
        f.write("netlink closed\n")
signal.signal(signal.SIGUSR1, on_usr1)
child = subprocess.Popen([redis, conf], stdin=subprocess.DEVNULL)
with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(ready + ".tmp", ready)
while child.poll() is None:
    signal.pause()
PY
start_workload R "$T/redis.ready" -- "$PYTHON" "$D/parent.py" "$T/redis.ready" "$T/parent.log" \
	"$REDIS" "$D/redis.conf"
LOCKED_ROOTS+=("$R")
diag_add "$T/parent.log"
"$PYTHON" "$RESP" wait 127.0.0.1 "$PORT" || fail "redis-server does not answer on port $PORT"
"$PYTHON" "$RESP" load 127.0.0.1 "$PORT" "$N" >"$T/load.out" || fail "loading the data set: $(cat "$T/load.out")"
log "$(cat "$T/load.out")"
setsid "$PYTHON" "$RESP" hold 127.0.0.1 "$PORT" "$N" "$D" </dev/null >"$D/hold.out" 2>&1 &
disown $!
diag_add "$D/hold.log" "$D/hold.out"
wait_grep "$D/hold.log" '^connected PONG'

# A refused dump (the netlink socket), then failed ones with the connection
# locked and in repair mode: all keeps working.
ckptctl_run dump "$R" -D "$T/netlink.img" && fail "dump of a tree with a netlink socket succeeded"
grep -q 'netlink socket' "$ERR" || fail "refusal does not name the netlink socket: $(cat "$ERR")"
log "refused: $(cat "$ERR")"
assert_running "$R"
"$PYTHON" "$RESP" check 127.0.0.1 "$PORT" "$N" | grep -q 'check ok' || fail "netlink refusal: data or server broken"
kill -USR1 "$R"
wait_grep "$T/parent.log" 'netlink closed'
for step in inet-repair dump-write; do
	CKPT_FAULT=$step ckptctl_run dump "$R" -D "$T/$step.img" && fail "$step: dump succeeded despite CKPT_FAULT"
	grep -q -- "$step" "$ERR" || fail "$step: error does not name the step: $(cat "$ERR")"
	assert_running "$R"
	"$PYTHON" "$RESP" check 127.0.0.1 "$PORT" "$N" | grep -q 'check ok' || fail "$step: data or server broken"
done

# the checkpoint through ckptd (its worker holds the connection)
start_ckptd
ckpt_dump "$R" "$T/redis.img"
assert_tree_gone "$R"
sleep 0.5
ckpt_restore "$T/redis.img"
[[ $RESTORED_PID == "$R" ]] || fail "restored pid $RESTORED_PID, dumped $R"
touch "$D/go"
wait_grep "$D/hold.log" '^(ok|FAIL)' 30
grep -q '^ok old connection' "$D/hold.log" || fail "old connection: $(tail -n 1 "$D/hold.log")"
"$PYTHON" "$RESP" check 127.0.0.1 "$PORT" "$N" | grep -q 'check ok' || fail "a new IPv4 client: data set not all there"
"$PYTHON" "$RESP" check ::1 "$PORT" "$N" | grep -q 'check ok' || fail "a new IPv6 client: data set not all there"
kill_tree "$R"
stop_ckptd
pass
