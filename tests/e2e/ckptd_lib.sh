# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# tests/e2e/ckptd_lib.sh: helpers for the ckptd tests, sourced after lib.sh.
# start_ckptd runs the daemon on a socket in the work directory and points
# ckptctl at it ($CKPT_SOCKET), so ckpt_dump / ckpt_restore of lib.sh go
# through the daemon. The daemon is tracked: cleanup kills it.

CKPTD=$CKPT_BUILD/ckptd
SOCK=$T/run/ckptd.sock
CKPTD_LOG=$T/ckptd.log
CKPTD_PID=''

socket_ready() { [[ -S $SOCK ]]; }

# start_ckptd [ARGS...]: ckptd --socket $SOCK ARGS, logs in $CKPTD_LOG.
start_ckptd()
{
	[[ -x $CKPTD ]] || fail "$CKPTD not built"
	diag_add "$CKPTD_LOG"
	# a ckptd killed before (SIGKILL) leaves its socket file: the wait below
	# must see the new one, not that
	rm -f "$SOCK"
	# the test's own key (mac.h), not /var/lib/ckpt/mac.key: CKPTD_MAC_KEY
	CKPTD_MAC_KEY=${CKPTD_MAC_KEY:-$T/mac.key}
	# and its own state directory (ckptctl preserve), not /var/lib/ckpt
	CKPT_STATE_DIR=${CKPT_STATE_DIR:-$T/state} \
		"$CKPTD" --socket "$SOCK" --mac-key "$CKPTD_MAC_KEY" "$@" 2>>"$CKPTD_LOG" &
	CKPTD_PID=$!
	disown "$CKPTD_PID" # no "Killed" notice at cleanup; the reaper still reaps it
	TRACKED+=("$CKPTD_PID")
	wait_for 10 "ckptd to listen on $SOCK" socket_ready
	export CKPT_SOCKET=$SOCK
	log "ckptd running as pid $CKPTD_PID on $SOCK"
}

# stop_ckptd: SIGTERM, and it must exit by itself.
stop_ckptd()
{
	kill -TERM "$CKPTD_PID" 2>/dev/null
	wait_for 10 "ckptd to exit after SIGTERM" gone "$CKPTD_PID"
	untrack "$CKPTD_PID"
	unset CKPT_SOCKET
}

assert_ckptd_alive()
{
	kill -0 "$CKPTD_PID" 2>/dev/null || fail "ckptd (pid $CKPTD_PID) died"
}

# expect_fail WHAT REGEX ARGS...: ckptctl ARGS must fail with REGEX on stderr.
expect_fail()
{
	local what=$1 re=$2
	shift 2
	if ckptctl_run "$@"; then
		cat "$OUT"
		fail "$what: ckptctl $* succeeded"
	fi
	grep -qE -- "$re" "$ERR" || { cat "$ERR"; fail "$what: no /$re/ in the error"; }
	log "$what: refused: $(head -n 1 "$ERR")"
}

# ckptd_user_add VAR NAME: create user NAME for this test (removed at exit,
# with userdel -f), set VAR to its uid.
CKPTD_USERS=()
ckptd_user_add()
{
	local var=$1 name=$2
	id -u "$name" >/dev/null 2>&1 && userdel -f "$name" >/dev/null 2>&1
	useradd --system --no-create-home --shell /usr/sbin/nologin "$name" ||
		fail "cannot create the test user $name"
	CKPTD_USERS+=("$name")
	trap 'rc=$?; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cleanup' EXIT
	printf -v "$var" '%s' "$(id -u "$name")"
}

# user_copy FILE: a copy of FILE (a workload script, a program) that test
# users can read and execute, in $T/ubin (the checkout may sit where only
# root can enter, a clone under mktemp -d); prints its path. $T must be
# searchable (chmod 0711 "$T").
user_copy()
{
	install -d -m 0755 "$T/ubin" && install -m 0755 "$1" "$T/ubin/" || fail "cannot copy $1 to $T/ubin"
	echo "$T/ubin/$(basename "$1")"
}

# as_user NAME CMD...: run CMD as NAME (its own gid, no other group, no caps).
as_user()
{
	local name=$1
	shift
	setpriv --reuid="$name" --regid="$(id -g "$name")" --clear-groups --inh-caps=-all -- "$@"
}

# user_ckptctl NAME ARGS...: ckptctl_run as NAME.
user_ckptctl()
{
	local name=$1
	shift
	cat >"$T/ckptctl-$name" <<WRAP
#!/bin/sh
exec setpriv --reuid=$name --regid=$(id -g "$name") --clear-groups --inh-caps=-all -- "$CKPT_BUILD/ckptctl" "\$@"
WRAP
	chmod 0755 "$T/ckptctl-$name"
	CKPTCTL=$T/ckptctl-$name ckptctl_run "$@"
}

# logs_named_exist FILE: every dump.log or restore.log an error in FILE
# names exists (the truth contract: no error points at a missing log).
logs_named_exist()
{
	local f
	for f in $(grep -oE '/[^ ]*(dump|restore)\.log' "$1"); do
		[[ -e $f ]] || fail "the error names $f, which does not exist"
	done
}
