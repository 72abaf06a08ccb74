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
# Forged copies: a restore for a non-root user needs privileges (TCP_REPAIR,
# the network lock, the same pids), which ckptd grants only to images it
# sealed for that user (mac.img, daemon/mac.h). Another user's lock table
# named as this connection's (it would be deleted), or sequence numbers
# changed, with every checksum fixed: refused, nothing touched.
VICTIM=ckpt_victim_$$
nft add table inet "$VICTIM" || fail "cannot make the table $VICTIM"
at_exit "nft delete table inet $VICTIM 2>/dev/null || true"
FORGE() { "$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" "$@"; }
conn=
for k in $(FORGE find "$U/s.img" files.img 2 10); do
	[[ $(FORGE get "$U/s.img" files.img "$k" 25.5) == 1 ]] && conn=$k && break
done
[[ -n $conn ]] || fail "no established TCP connection in files.img"
# forged NAME PATH VALUE: a copy of the checkpoint, inet_sk field PATH set
forged()
{
	local d=$U/$1
	rm -rf "$d" && cp -a "$U/s.img" "$d" && rm -f "$d/restore.log"
	[[ -n $2 ]] && FORGE set "$d" files.img "$conn" "$2" "$3"
	chown -R "$TUID:$TGID" "$d"
}
# refused DIR WHAT PATTERN
refused()
{
	if user_ctl restore "$1" --json; then
		kill_tree "$(json_get "$OUT" root_pid)"
		fail "$2: restored"
	fi
	grep -qE -- "$3" "$ERR" || fail "$2: not refused with /$3/: $(cat "$ERR")"
	nft list table inet "$VICTIM" >/dev/null 2>&1 || fail "$2: the table $VICTIM was deleted"
	lock_tables "$S" >/dev/null || fail "$2: the user's own lock is gone"
	gone "$S" || fail "$2: pid $S is in use"
	log "$2: refused: $(head -n 1 "$ERR" | cut -c1-200)"
}
forged lock 25.40 "s:$VICTIM"
refused "$U/lock" "lock_table = another user's table" "mac.img: the images are not the ones ckptd wrote"
forged seq 25.23 12345
refused "$U/seq" "snd_seq changed" "mac.img: the images are not the ones ckptd wrote"
forged nomac ""
rm -f "$U/nomac/mac.img"
refused "$U/nomac" "mac.img removed" "no valid mac.img"
forged othermac ""
FORGE seal "$U/othermac" "$CKPTD_MAC_KEY" $((TUID + 1))
chown "$TUID:$TGID" "$U/othermac/mac.img"
refused "$U/othermac" "mac.img of another uid" "mac.img: the images are not the ones ckptd wrote"

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
