#!/bin/bash
# SPDX-License-Identifier: MIT
# Incremental dumps through ckptd for an unprivileged user (ckpt-test,
# created if missing; docs/incremental.md, "Through ckptd"): a chain of
# three of its own program (tests/workloads/incr.c) dumped and restored by
# the user, the memory equal to the program's own hash at the last dump.
# A parent without ckptd's seal (mac.img removed) is refused, by the dump
# and by the restore, naming it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

TUSER=ckpt-test
if ! id -u "$TUSER" >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin "$TUSER" ||
		fail "cannot create the test user $TUSER"
fi
TUID=$(id -u "$TUSER")
TGID=$(id -g "$TUSER")
chmod 0711 "$T"
U=$T/u
mkdir "$U" && chown "$TUID:$TGID" "$U"
install -d -m 0755 "$T/bin"
install -m 0755 "$WL/incr" "$T/bin/incr"
cd "$T" || fail "cd $T"
cat >"$T/ckptctl-user" <<WRAP
#!/bin/sh
exec setpriv --reuid=$TUID --regid=$TGID --clear-groups --inh-caps=-all -- "$CKPT_BUILD/ckptctl" "\$@"
WRAP
chmod 0755 "$T/ckptctl-user"
user_ctl() { CKPTCTL=$T/ckptctl-user ckptctl_run "$@"; }
user_dump() { user_ctl dump "$@" || fail "$TUSER: dump $* failed: $(cat "$ERR")"; }

has_round() { local c; c=$(grep -c " $2\$" "$1" 2>/dev/null); ((${c:-0} >= $3)); }
wait_round() { wait_for 20 "$3 processes '$2' in $1" has_round "$@"; }
sum_of() { awk -v p="P$2" -v r="$3" '$1 == p && $2 == "sum" && $3 == r { print $4 }' "$1" | tail -n 1; }
check_of() { awk -v p="P$2" '$1 == p && $2 == "check" { print $3 }' "$1" | tail -n 1; }

start_ckptd

touch "$T/W.stdout" "$T/W.stderr"
chown "$TUID:$TGID" "$T/W.stdout" "$T/W.stderr"
LOG=$U/w.log
diag_add "$LOG"
start_workload W "$U/w.ready" -- setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
	--inh-caps=-all -- "$T/bin/incr" "$LOG" "$U/w.ready"
wait_round "$LOG" "ready 0" 1
user_dump "$W" -D "$U/p1" --pre-dump --json
first=$(json_get "$OUT" pages_bytes)
[[ -s $U/p1/mac.img ]] || fail "the pre-dump through ckptd is not sealed"
kill -USR1 "$W"
wait_round "$LOG" "ready 1" 1

# a parent without the seal: refused
cp -a "$U/p1" "$U/q1"
rm -f "$U/q1/mac.img"
user_ctl dump "$W" -D "$U/qx" --pre-dump --parent "$U/q1" && fail "dump on an unsealed parent succeeded"
grep -q "parent checkpoint ../q1" "$ERR" || fail "unsealed parent: unexpected error $(cat "$ERR")"
assert_tree_running "$W"

user_dump "$W" -D "$U/p2" --pre-dump --parent "$U/p1"
kill -USR1 "$W"
wait_round "$LOG" "ready 2" 1
user_dump "$W" -D "$U/p3" --parent "$U/p2" --json
last=$(json_get "$OUT" pages_bytes)
log "$TUSER: pre-dump $first bytes of pages, final dump $last"
((last * 4 < first)) || fail "final dump wrote $last bytes of pages, the pre-dump $first"
assert_tree_gone "$W"

# the middle one's seal gone: the restore refuses, naming it
mv "$U/p2/mac.img" "$U/p2.mac"
user_ctl restore "$U/p3" && fail "restore with an unsealed parent succeeded"
grep -q "parent checkpoint p2" "$ERR" || fail "unsealed parent at restore: unexpected error $(cat "$ERR")"
mv "$U/p2.mac" "$U/p2/mac.img"

CKPTCTL=$T/ckptctl-user ckpt_restore "$U/p3"
[[ $RESTORED_PID == "$W" ]] || fail "restored pid $RESTORED_PID, dumped $W"
kill -USR2 "$W"
wait_grep "$LOG" "^P0 check"
[[ $(check_of "$LOG" 0) == "$(sum_of "$LOG" 0 2)" ]] ||
	fail "memory after the user's restore $(check_of "$LOG" 0) differs from the dump's $(sum_of "$LOG" 0 2)"
kill_tree "$W"
stop_ckptd
pass
