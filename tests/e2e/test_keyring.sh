#!/bin/bash
# SPDX-License-Identifier: MIT
# Session keyrings (tests/workloads/keyring.py). Every restored task is a
# fork of the restorer and so started in the restorer's session keyring:
# before the fix a program in a keyring of its own came back in the
# restorer's, and a caller's program restored through ckptd came back in
# ckptd's, possessing it: it read a key root had put there (the test's
# ckptd holds one, "root-secret"). Now the tree keeps the restorer's
# keyring only when it is the one it was dumped in; otherwise it gets a new
# one, owned by its user, linking what its own linked (its user's keyring,
# or its user's session keyring when it had none of its own). What cannot
# be given back is refused, naming the pid: keys in its own keyring where
# the restore would not run in it (at dump, and in a forged image at
# restore), a process keyring, a thread keyring, a keyring inside its keyring.
# Its "user" keys come back in the new keyring (payload, permissions).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

WLSRC=$CKPT_SRC/tests/workloads

# keyring_id SPEC: the serial of our keyring SPEC (-3 session, -4 user, -5 user session)
keyring_id()
{
	"$PYTHON" -c 'import ctypes, sys; L = ctypes.c_long
print(ctypes.CDLL(None).syscall(L(250), L(0), L(int(sys.argv[1])), L(0)))' "$1"
}

# start MODE: the workload as MODE; its pid in P, its first state in FIRST
start()
{
	LOG=$T/$1.log
	diag_add "$LOG"
	start_workload P "$T/$1.ready" -- "$PYTHON" "$WLSRC/keyring.py" "$LOG" "$T/$1.ready" "$1"
	wait_grep "$LOG" '^ok 1$' 10
	FIRST=$(awk '$1 == "start" { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }' "$LOG")
	log "$1: $FIRST"
}

# now_after LINES: the state the program logged after line LINES (it runs on)
now_after()
{
	wait_grep_after "$LOG" "$1" '^now '
	tail -n +$(($1 + 1)) "$LOG" | awk '$1 == "now" { $1 = ""; sub(/^ /, ""); s = $0 } END { print s }'
}

# dump_restore: dumped, killed, restored with its pid; NOW: its state after
dump_restore()
{
	local lines
	tree_snapshot "$P" >"$T/tree.before"
	rm -rf "$T/img"
	ckpt_dump "$P" "$T/img"
	assert_tree_gone "$P"
	lines=$(line_count "$LOG")
	ckpt_restore "$T/img"
	[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
	NOW=$(now_after "$lines")
}

# refused WHAT: the dump fails with WHAT, the program runs on as it was
refused()
{
	local lines
	lines=$(line_count "$LOG")
	ckptctl_run dump "$P" -D "$T/refused" && fail "a dump succeeded where it must refuse: $1"
	grep -qF -- "$1" "$ERR" || fail "the dump's error is not '$1': $(cat "$ERR")"
	[[ $(now_after "$lines") == "$FIRST" ]] || fail "after the refused dump: $(now_after "$lines"), not $FIRST"
	kill_tree "$P"
}

# nobody_keyring: "SERIAL DESCRIPTION" of the session keyring a child of
# ours that becomes nobody has: nobody's session keyring where we have
# none of our own (as here), ours where we have one (a pam login)
nobody_keyring()
{
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$PYTHON" -c 'import ctypes
L = ctypes.c_long; libc = ctypes.CDLL(None)
sid = libc.syscall(L(250), L(0), L(-3), L(0)); d = ctypes.create_string_buffer(256)
libc.syscall(L(250), L(6), L(sid), d, L(256)); print(sid, d.value.decode())'
}

NOBODY=$(nobody_keyring)
log "a child of ours that becomes nobody is in: $NOBODY"
OWN=$(keyring_id -3)
USERKR=$(keyring_id -4)
log "our session keyring $OWN, user keyring $USERKR"

# none of its own, as we: the same after restore
start plain
dump_restore
[[ $NOW == "$FIRST" ]] || fail "plain: after restore '$NOW', before '$FIRST'"
kill_tree "$P"

# a program that never asked for its keyring: the dump must not make it
# ask (a lookup installs its user's, root's, which a child that becomes
# nobody would then possess); its late child is in nobody's
LOG=$T/quiet.log
diag_add "$LOG"
start_workload P "$T/quiet.ready" -- "$PYTHON" "$WLSRC/keyring.py" "$LOG" "$T/quiet.ready" quiet
wait_grep "$LOG" '^ok 1$' 10
ckpt_dump "$P" "$T/quiet.img" --leave-running
kill -USR1 "$P"
wait_grep "$LOG" '^late ' 10
grep -qF "late $NOBODY " "$LOG" ||
	fail "the dump installed a session keyring in the program: its late child $(grep '^late ' "$LOG"), not in $NOBODY"
kill_tree "$P"

# none of its own, with a child of another user (a daemon's worker): each
# keeps falling back to its own user's, as the restorer has none either
start setuid
wait_grep "$LOG" '^child ' 10
CHILD=$(awk '$1 == "child-start" { print $2; exit }' "$LOG")
CFIRST=$(awk '$1 == "child-start" { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }' "$LOG")
[[ $CFIRST == "$NOBODY "* ]] || fail "setuid: the child is not in $NOBODY: $CFIRST"
dump_restore
[[ $NOW == "$FIRST" ]] || fail "setuid: after restore '$NOW', before '$FIRST'"
lines=$(line_count "$LOG")
wait_grep_after "$LOG" "$lines" '^child '
[[ $(tail -n +$((lines + 1)) "$LOG" | grep -m1 '^child ' | cut -d' ' -f2-) == "$CFIRST" ]] ||
	fail "setuid: the child (pid $CHILD) after restore: $(tail -n +$((lines + 1)) "$LOG" | grep -m1 '^child '), before $CFIRST"
kill_tree "$P"

# its own, empty: a new one of its own (not ours), empty
start empty
dump_restore
[[ $NOW =~ ^([0-9]+)\ keyring\;0\;0\;[0-9a-f]+\;_ses\ links=\ secret=-\ mine=-$ ]] ||
	fail "empty: after restore '$NOW', not a new empty _ses keyring of uid 0 (before: '$FIRST')"
((BASH_REMATCH[1] != OWN)) || fail "empty: the restored program is in the restorer's keyring $OWN"
# a forged count of keys: refused by the restore, nothing made
kill_tree "$P"
refused_forged "$T/img" "core-$P.img" 0 38.4 2 "its session keyring (serial ${FIRST%% *}) held 2 keys, 0 saved" "$T/tree.before"
refused_forged "$T/img" "core-$P.img" 0 38.1 0 "field keyring.serial: 0 is not a serial" "$T/tree.before"

# its own, linking the user keyring (pam_keyinit's): a new one linking it
start userlink
[[ $FIRST == *" links=$USERKR secret=- mine=-" ]] || fail "userlink: the workload did not link $USERKR: $FIRST"
dump_restore
[[ $NOW =~ ^[0-9]+\ keyring\;0\;0\;[0-9a-f]+\;_ses\ links=$USERKR\ secret=-\ mine=-$ ]] ||
	fail "userlink: after restore '$NOW', not a new _ses keyring linking $USERKR"
kill_tree "$P"

# a key of its own (as systemd's invocation_id in a service's keyring):
# the new keyring holds it again, payload and permissions (another serial)
start key
[[ $FIRST == *" mine=secret/3f010000" ]] || fail "key: the workload has no key of its own: $FIRST"
dump_restore
[[ $NOW =~ ^([0-9]+)\ keyring\;0\;0\;[0-9a-f]+\;_ses\ links=[0-9]+\ secret=-\ mine=secret/3f010000$ ]] ||
	fail "key: after restore '$NOW', not a new keyring holding its key (before: '$FIRST')"
kill_tree "$P"
start nested
refused "pid $P: its session keyring holds a keyring \"inner\""
start process
refused "pid $P has a process keyring"
start thread
refused "has a thread keyring"

# ckptd in a session keyring of its own holding root's key; a user's
# program (none of its own) restored through it must not possess it
ckptd_user_add AUID ckpt-keyring-a
chmod 0711 "$T"
KEYRING_PY=$(user_copy "$WLSRC/keyring.py")
cat >"$T/ckptd-in-keyring" <<EOF
#!$PYTHON
import ctypes, os, sys
libc = ctypes.CDLL(None); L = ctypes.c_long
libc.syscall(L(250), L(1), L(0))
if libc.syscall(L(248), b"user", b"root-secret", b"TOPSECRET", L(9), L(-3)) < 0:
    sys.exit("add_key")
os.execv("$CKPTD", ["$CKPTD"] + sys.argv[1:])
EOF
chmod 0755 "$T/ckptd-in-keyring"
CKPTD=$T/ckptd-in-keyring
start_ckptd
mkdir -m 0700 "$T/u" && chown ckpt-keyring-a: "$T/u"
touch "$T/u/out" "$T/U.stderr" && chown ckpt-keyring-a: "$T/u/out" "$T/U.stderr"
LOG=$T/u/log
diag_add "$LOG"
# in a directory the user can enter (the build tree may sit where only root
# can, a clone under mktemp -d): its cwd is restored with the user's rights
cd "$T/u" || fail "cd $T/u"
start_workload U "$T/u/ready" --stdout "$T/u/out" -- setpriv --reuid=ckpt-keyring-a \
	--regid="$(id -g ckpt-keyring-a)" --clear-groups --inh-caps=-all -- "$PYTHON" "$KEYRING_PY" "$LOG" "$T/u/ready" plain
wait_grep "$LOG" '^ok 1$' 10
FIRST=$(awk '$1 == "start" { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }' "$LOG")
log "the user's program: $FIRST"
[[ $FIRST == *" secret=- mine=-" ]] || fail "the user's program finds root's key before any restore: $FIRST"
mkdir -m 0700 "$T/u/img" && chown ckpt-keyring-a: "$T/u/img"
user_ckptctl ckpt-keyring-a dump "$U" -D "$T/u/img/c" || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$U"
lines=$(line_count "$LOG")
user_ckptctl ckpt-keyring-a restore "$T/u/img/c" || fail "the user's restore failed: $(cat "$ERR")"
TRACKED+=("$U")
NOW=$(now_after "$lines")
log "restored: $NOW"
[[ $NOW == *" secret=- mine=-" ]] || fail "the user's restored program reads root's key: $NOW"
# (its user's session keyring, linked; or, where this test runs in a
# keyring of its own (a pam login), that empty one, not linked)
want=""
[[ $FIRST == *";_uid_ses.$AUID links="* ]] && want=${FIRST%% *}
[[ $NOW =~ ^[0-9]+\ keyring\;$AUID\;[0-9]+\;[0-9a-f]+\;_ses\ links=$want\ secret=-\ mine=-$ ]] ||
	fail "the user's restored program is not in a new keyring of its own linking '$want': $NOW"
kill_tree "$U"
pass
