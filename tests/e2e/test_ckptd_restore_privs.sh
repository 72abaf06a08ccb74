#!/bin/bash
# SPDX-License-Identifier: MIT
# ckpt-restore run by ckptd for a non-root caller opens the files of the
# images with exactly the caller's rights: its capabilities stay in the
# permitted set and are raised only around clone3, ptrace, TCP_REPAIR and
# the network lock (lib/caps.h). A user's checkpoint whose stdout entry is
# made to name /proc/PID/maps of a root process (readable only with
# CAP_SYS_PTRACE) or a root-only file (0600 in a 0700 directory) is refused
# with "Permission denied" naming the file, and nothing is left running;
# the unforged checkpoint restores, and the restored program runs as the
# user without capabilities. A user's queued credentials and fds in flight,
# a user's io_uring ring with setup flags only the kernel reader sees, and
# a user's pre-forked tree whose workers share pages only among themselves
# come back through the user's own dump and restore.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"
. "$(dirname "$0")/prefork_lib.sh"

FORGE() { "$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" "$@"; }

ckptd_user_add AUID ckpt-priv-a
chmod 0711 "$T"
install -d -m 0755 "$T/bin"
install -m 0755 "$WL/sleeper" "$T/bin/sleeper"
mkdir -m 0700 "$T/a" && chown ckpt-priv-a: "$T/a"
touch "$T/out" "$T/P.stderr" && chown ckpt-priv-a: "$T/out" "$T/P.stderr"
# a secret of root's
install -d -m 0700 "$T/root-only"
echo "root's secret" >"$T/root-only/secret" && chmod 0600 "$T/root-only/secret"

# a process of root's whose maps the user may not read
start_workload R "$T/r.ready" -- "$WL/sleeper" nanosleep "$T/r.log" "$T/r.ready" 1
as_user ckpt-priv-a cat "/proc/$R/maps" >/dev/null 2>&1 && fail "the user can read /proc/$R/maps itself"

start_ckptd ${CKPTD_EXTRA_ARGS:-}
# the user's program works in a directory the user can enter (the build
# tree may sit where only root can, a clone under mktemp -d): its cwd is
# restored with the user's rights
cd "$T/a" || fail "cd $T/a"
start_workload P "$T/a/p.ready" --stdout "$T/out" -- setpriv --reuid=ckpt-priv-a --regid="$(id -g ckpt-priv-a)" \
	--clear-groups --inh-caps=-all -- "$T/bin/sleeper" nanosleep "$T/a/p.log" "$T/a/p.ready" 1
tree_snapshot "$P" >"$T/tree.before"
mkdir -m 0700 "$T/a/ck" && chown ckpt-priv-a: "$T/a/ck"
user_ckptctl ckpt-priv-a dump "$P" -D "$T/a/ck" --json || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$P"

# the entry of fd 1 (stdout: $T/out, opened for writing)
fd_rec=$(FORGE find "$T/a/ck" "fds-$P.img" 1 1)
[[ -n $fd_rec ]] || fail "no fd 1 in fds-$P.img"
file_id=$(FORGE get "$T/a/ck" "fds-$P.img" "$fd_rec" 3)
file_rec=$(FORGE find "$T/a/ck" files.img 1 "$file_id")
[[ $(FORGE get "$T/a/ck" files.img "$file_rec" 3) == "$T/out" ]] || fail "fd 1 is not $T/out"

# forged NAME PATH: a copy of the user's checkpoint whose fd 1 is PATH, read-only
forged()
{
	local d=$T/a/$1
	rm -rf "$d" && cp -a "$T/a/ck" "$d" && rm -f "$d/restore.log" "$d/dump.log"
	FORGE set "$d" files.img "$file_rec" 3 "s:$2"
	FORGE set "$d" files.img "$file_rec" 4 0 # O_RDONLY
	FORGE set "$d" files.img "$file_rec" 5 0 # position 0
	# what a forger cannot do (test_ckptd_sealed): seal it with ckptd's key.
	# Playing ckptd's part, this stands for an honest checkpoint of a
	# program holding such a file: the restorer's capabilities must not
	# open it either.
	FORGE seal "$d" "$CKPTD_MAC_KEY" "$AUID"
	chown -R ckpt-priv-a: "$d"
}

# refused DIR FILE: the user's restore fails with Permission denied naming FILE
refused()
{
	if user_ckptctl ckpt-priv-a restore "$1" --json; then
		kill_tree "$(json_get "$OUT" root_pid)"
		fail "$2: the forged checkpoint was restored"
	fi
	grep -qF "$2" "$ERR" && grep -q "Permission denied" "$ERR" ||
		fail "$2: not refused with Permission denied naming it: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	log "fd 1 = $2: refused: $(head -n 1 "$ERR" | cut -c1-200)"
}

forged maps "/proc/$R/maps"
refused "$T/a/maps" "/proc/$R/maps"
forged secret "$T/root-only/secret"
refused "$T/a/secret" "$T/root-only/secret"

# the checkpoint as dumped restores, as the user, without capabilities
rm -f "$T/a/ck/restore.log"
user_ckptctl ckpt-priv-a restore "$T/a/ck" --json || fail "the user's own restore failed: $(cat "$ERR")"
RESTORED_PID=$(json_get "$OUT" root_pid)
TRACKED+=("$RESTORED_PID")
assert_same_tree "$T/tree.before" "$RESTORED_PID"
read -r _ ruid _ < <(grep '^Uid:' "/proc/$RESTORED_PID/status")
[[ $ruid == "$AUID" ]] || fail "the restored program runs as uid $ruid"
grep -Eq '^CapEff:\s+0+$' "/proc/$RESTORED_PID/status" || fail "the restored program has capabilities"
kill_tree "$RESTORED_PID"

# a user's queued message with its own credentials and a pipe end in flight:
# given back by the user's restore (another pid needs CAP_SYS_ADMIN, raised
# around the send; the uid and gid are the user's own)
install -m 0755 "$WL/scmrights" "$T/bin/scmrights"
mkdir -m 0700 "$T/a/cr" "$T/a/ck2" && chown ckpt-priv-a: "$T/a/cr" "$T/a/ck2"
touch "$T/C.stdout" "$T/C.stderr" && chown ckpt-priv-a: "$T/C.stdout" "$T/C.stderr"
start_workload C "$T/a/c.ready" -- setpriv --reuid=ckpt-priv-a --regid="$(id -g ckpt-priv-a)" \
	--clear-groups --inh-caps=-all -- "$T/bin/scmrights" "$T/a/cr" "$T/a/cr/log" "$T/a/c.ready" cred
user_ckptctl ckpt-priv-a dump "$C" -D "$T/a/ck2" --json || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$C"
user_ckptctl ckpt-priv-a restore "$T/a/ck2" --json || fail "the user's restore of credentials failed: $(cat "$ERR")"
RESTORED_PID=$(json_get "$OUT" root_pid)
TRACKED+=("$RESTORED_PID")
touch "$T/a/cr/go"
wait_grep "$T/a/cr/log" 'ok cred|FAIL' 10
grep -q FAIL "$T/a/cr/log" && fail "credentials after the user's restore: $(cat "$T/a/cr/log")"
log "a user's queued message: its credentials and fd in flight given back by the user's restore"
kill_tree "$RESTORED_PID"

# a user's io_uring ring set up with flags no call shows (SUBMIT_ALL...):
# ckptd's dump reads them with the kernel reader for the user, the user's
# restore makes the ring again with them; the program's own checks go on
# clean (tests/workloads/iouring.c, mode flags)
install -m 0755 "$WL/iouring" "$T/bin/iouring"
mkdir -m 0700 "$T/a/iu" "$T/a/ck3" && chown ckpt-priv-a: "$T/a/iu" "$T/a/ck3"
touch "$T/I.stdout" "$T/I.stderr" && chown ckpt-priv-a: "$T/I.stdout" "$T/I.stderr"
start_workload I "$T/a/i.ready" -- setpriv --reuid=ckpt-priv-a --regid="$(id -g ckpt-priv-a)" \
	--clear-groups --inh-caps=-all -- "$T/bin/iouring" "$T/a/iu/log" "$T/a/i.ready" "$T/a/iu" flags
wait_grep "$T/a/iu/log" '^ok 3 ' 10
user_ckptctl ckpt-priv-a dump "$I" -D "$T/a/ck3" --json || fail "the user's io_uring dump failed: $(cat "$ERR")"
assert_tree_gone "$I"
lines=$(wc -l <"$T/a/iu/log")
user_ckptctl ckpt-priv-a restore "$T/a/ck3" --json || fail "the user's io_uring restore failed: $(cat "$ERR")"
RESTORED_PID=$(json_get "$OUT" root_pid)
TRACKED+=("$RESTORED_PID")
wait_for 10 "5 more rounds after the user's restore" eval "(( \$(wc -l <$T/a/iu/log) >= lines + 5 ))"
tail -n +$((lines + 1)) "$T/a/iu/log" | grep -v ' bad 0$' &&
	fail "the user's ring after restore: $(grep -m1 '^bad' "$T/a/iu/log")"
log "a user's io_uring ring with SUBMIT_ALL: dumped and restored through ckptd, its checks clean"
kill_tree "$RESTORED_PID"

# a user's pre-forked tree whose workers share pages the parent rewrote or
# unmapped (prefork gc): the user's restore, with the user's rights, holds
# a worker's pages while it forks those sharing them; the memory of the
# tree is what it was and every process's checks go on clean
install -m 0755 "$WL/prefork" "$T/bin/prefork"
mkdir -m 0700 "$T/a/pf" "$T/a/ck4" && chown ckpt-priv-a: "$T/a/pf" "$T/a/ck4"
touch "$T/PF.stdout" "$T/PF.stderr" && chown ckpt-priv-a: "$T/PF.stdout" "$T/PF.stderr"
LOG=$T/a/pf/log
diag_add "$LOG"
start_workload PF "$T/a/pf.ready" -- setpriv --reuid=ckpt-priv-a --regid="$(id -g ckpt-priv-a)" \
	--clear-groups --inh-caps=-all -- "$T/bin/prefork" 8 16 "$LOG" "$T/a/pf.ready" gc
lines=$(line_count "$LOG")
wait_for 30 "every process of the user's tree to check its memory" all_ok_after "$lines"
tree_snapshot "$PF" >"$T/pf.before"
pss=$(tree_pss "$PF")
user_ckptctl ckpt-priv-a dump "$PF" -D "$T/a/ck4" --json || fail "the user's prefork dump failed: $(cat "$ERR")"
assert_tree_gone "$PF"
lines=$(line_count "$LOG")
user_ckptctl ckpt-priv-a restore "$T/a/ck4" --json || fail "the user's prefork restore failed: $(cat "$ERR")"
RESTORED_PID=$(json_get "$OUT" root_pid)
TRACKED+=("$RESTORED_PID")
assert_same_tree "$T/pf.before" "$PF"
wait_for 30 "every process of the user's tree to check its memory after restore" all_ok_after "$lines"
no_corrupt || fail "the user's tree: memory differs after restore"
pss_near "a user's pre-forked tree sharing pages between siblings, through ckptd" "$(tree_pss "$PF")" "$pss"
kill_tree "$PF"
pass
