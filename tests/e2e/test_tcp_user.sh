#!/bin/bash
# SPDX-License-Identifier: MIT
# TCP through ckptd for an unprivileged user (ckpt-test, created if
# missing): the user's echo server (tests/workloads/tcpecho.py) with a
# client outside the tree connected before the dump; the user dumps and
# restores it through ckptd (the worker locks and repairs the connection,
# the restorer, running as the user with NET_ADMIN ambient, restores it and
# deletes the lock); the client gets every byte echoed back in order and the
# restored server runs as the user without capabilities.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

# lock tables of this test's trees left by a failure are deleted at exit
LOCKED_ROOTS=()
drop_locks()
{
	local pid t
	for pid in "${LOCKED_ROOTS[@]}"; do
		for t in $(nft list tables 2>/dev/null | awk -v t="ckpt_${pid}_" '$2 == "inet" && index($3, t) == 1 { print $3 }'); do
			nft delete table inet "$t"
		done
	done
}
trap 'rc=$?; drop_locks; (exit $rc); cleanup' EXIT

TUSER=ckpt-test
if ! id -u "$TUSER" >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin "$TUSER" ||
		fail "cannot create the test user $TUSER"
	log "created user $TUSER"
fi
TUID=$(id -u "$TUSER")
TGID=$(id -g "$TUSER")
PORT=$((20000 + RANDOM % 20000))

chmod 0711 "$T"
U=$T/u
mkdir "$U" && chown "$TUID:$TGID" "$U"
install -d -m 0755 "$T/bin"
install -m 0644 "$WLSRC/tcpecho.py" "$T/bin/tcpecho.py"
cd "$T" || fail "cd $T"
cat >"$T/ckptctl-user" <<WRAP
#!/bin/sh
exec setpriv --reuid=$TUID --regid=$TGID --clear-groups --inh-caps=-all -- "$CKPT_BUILD/ckptctl" "\$@"
WRAP
chmod 0755 "$T/ckptctl-user"
user_ctl() { CKPTCTL=$T/ckptctl-user ckptctl_run "$@"; }
lock_tables() { nft list tables | awk -v t="ckpt_$1_" '$2 == "inet" && index($3, t) == 1 { print $3 }' | grep .; }

start_ckptd
touch "$T/S.stdout" "$T/S.stderr"
chown "$TUID:$TGID" "$T/S.stdout" "$T/S.stderr"
start_workload S "$U/s.ready" -- setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
	--inh-caps=-all -- "$PYTHON" "$T/bin/tcpecho.py" server "$PORT" "$U/s.ready" "$U/s.log"
LOCKED_ROOTS+=("$S")
diag_add "$U/s.log"
setsid "$PYTHON" "$WLSRC/tcpecho.py" client 127.0.0.1 "$PORT" "$T/stop" "$T/c.out" </dev/null >"$T/c.err" 2>&1 &
disown $!
diag_add "$T/c.out" "$T/c.err"
wait_grep "$U/s.log" accepted
wait_grep "$T/c.out" '^recv'

user_ctl dump "$S" -D "$U/s.img" || fail "$TUSER could not dump its echo server: $(cat "$ERR")"
assert_tree_gone "$S"
lock_tables "$S" >/dev/null || fail "no lock holds the connection after the dump"

"$CKPTCTL" show "$U/s.img" files.img | grep -q '"lock_table"' || fail "no lock_table in files.img"
sleep 0.5
CKPTCTL=$T/ckptctl-user ckpt_restore "$U/s.img"
[[ $RESTORED_PID == "$S" ]] || fail "restored pid $RESTORED_PID, dumped $S"
grep -q '^CapEff:[[:space:]]*0000000000000000' "/proc/$S/status" || fail "restored server has capabilities"
grep -q "^Uid:[[:space:]]*$TUID" "/proc/$S/status" || fail "restored server does not run as $TUSER"
lock_tables "$S" && fail "the restore left the lock"
before=$(awk '$1 == "recv" { n = $2 } END { print n + 0 }' "$T/c.out")
wait_for 15 "the client to receive more echoes" eval \
	"(( \$(awk '\$1 == \"recv\" { n = \$2 } END { print n + 0 }' \"$T/c.out\") > $before + 2000 ))"
touch "$T/stop"
wait_grep "$T/c.out" '^(ok|FAIL)' 60
grep -q '^ok' "$T/c.out" || fail "client: $(tail -n 1 "$T/c.out")"
log "client: $(tail -n 1 "$T/c.out") lines echoed across the user's dump and restore"
kill_tree "$S"
stop_ckptd
pass
