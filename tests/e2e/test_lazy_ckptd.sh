#!/bin/bash
# SPDX-License-Identifier: MIT
# restore --lazy through ckptd, as root and as an unprivileged user: the
# answer carries pager_pid, `ckptctl ps` shows the pager running and then
# done, the program's own check of its memory passes. For the user, the
# pager runs with the user's ids and no capability at all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

MIB=${LAZY_MIB:-128}

ckptd_user_add LUID ckpt-lazy-u
chmod 0711 "$T"
MEMHOG=$(user_copy "$WL/memhog")
# every pager of this ckptd holds its background copy back for 5 s: there
# is time to look at it (ckpt-restore gets ckptd's environment)
CKPT_FAULT=pager-late-prefetch start_ckptd ${CKPTD_EXTRA_ARGS:-}

# check_lazy NAME LOG PID PAGER: pager seen by ps, gone in time, memory right
check_lazy()
{
	local name=$1 log=$2 pid=$3 pager=$4 lines=$5
	ckptctl_run ps --json || fail "$name: ckptctl ps failed"
	grep -q "\"pager_pid\":$pager" "$OUT" || { cat "$OUT"; fail "$name: ckptctl ps does not show pager $pager"; }
	GONE_TIMEOUT=30 assert_gone "$pager"
	ckptctl_run ps --json || fail "$name: ckptctl ps failed"
	grep -q "\"pager_pid\":$pager,\"pager_running\":false" "$OUT" || { cat "$OUT"; fail "$name: ckptctl ps does not show pager $pager done"; }
	wait_lines "$log" $((lines + 2)) 30
	grep -n CORRUPT "$log" && fail "$name: memory corrupted after restore --lazy through ckptd"
	check_memhog_log "$log" >/dev/null || fail "$name: memhog log bad after restore --lazy"
	assert_running "$pid"
	log "$name: pager $pager shown by ps, done; memory verified"
}

# root
LOG=$T/root.log
diag_add "$LOG"
start_workload MH "$T/root.ready" -- "$WL/memhog" "$MIB" "$LOG" "$T/root.ready" --interval 1000
wait_lines "$LOG" 2 20
ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
ckpt_restore "$T/img" --lazy
pager=$(json_get "$OUT" pager_pid) || { cat "$OUT"; fail "root: no pager_pid in the answer"; }
check_lazy root "$LOG" "$MH" "$pager" "$lines"

# the same through libckpt (tests/examples/ckpt_example.c: opts.lazy,
# result.pager_pid, the job's pager_running)
EX=$CKPT_BUILD/tests/examples/ckpt-example
ckpt_dump "$MH" "$T/img-lib"
assert_tree_gone "$MH"
lines=$(line_count "$LOG")
"$EX" --socket "$SOCK" restore "$T/img-lib" --lazy >"$T/lib.restore" 2>&1 || fail "libckpt restore --lazy failed: $(cat "$T/lib.restore")"
pager=$(sed -n 's/.* pager=\([0-9]*\).*/\1/p' "$T/lib.restore")
((pager > 0)) || fail "libckpt: no pager in $(cat "$T/lib.restore")"
"$EX" --socket "$SOCK" status >"$T/lib.status" 2>&1 || fail "libckpt status failed"
grep -q "pager=$pager pager_running=1" "$T/lib.status" || { cat "$T/lib.status"; fail "libckpt: the job does not show pager $pager running"; }
check_lazy libckpt "$LOG" "$MH" "$pager" "$lines"
kill_tree "$MH"
untrack "$MH"

# an unprivileged user
mkdir -m 0700 "$T/u" && chown ckpt-lazy-u: "$T/u"
cd "$T/u" || fail "cd $T/u"
ULOG=$T/u/mh.log
diag_add "$ULOG"
touch "$T/u/out" "$T/UM.stderr" && chown ckpt-lazy-u: "$T/u/out" "$T/UM.stderr"
start_workload UM "$T/u/mh.ready" --stdout "$T/u/out" -- setpriv --reuid=ckpt-lazy-u --regid="$(id -g ckpt-lazy-u)" \
	--clear-groups --inh-caps=-all -- "$MEMHOG" "$MIB" "$ULOG" "$T/u/mh.ready" --interval 1000
wait_lines "$ULOG" 2 20
mkdir -m 0700 "$T/u/ck" && chown ckpt-lazy-u: "$T/u/ck"
user_ckptctl ckpt-lazy-u dump "$UM" -D "$T/u/ck" --json || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$UM"
lines=$(line_count "$ULOG")
user_ckptctl ckpt-lazy-u restore "$T/u/ck" --lazy --json ||
	fail "the user's restore --lazy failed: $(cat "$ERR")"
TRACKED+=("$UM")
pager=$(json_get "$OUT" pager_pid) || { cat "$OUT"; fail "user: no pager_pid in the answer"; }
uid=$(awk '/^Uid:/ {print $2 "," $3 "," $4 "," $5}' "/proc/$pager/status")
capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$pager/status")
capprm=$(awk '/^CapPrm:/ {print $2}' "/proc/$pager/status")
[[ $uid == "$LUID,$LUID,$LUID,$LUID" ]] || fail "the user's pager runs with uids $uid, not $LUID"
[[ $capeff == 0000000000000000 && $capprm == 0000000000000000 ]] || fail "the user's pager has capabilities (CapEff $capeff, CapPrm $capprm)"
log "user: pager $pager runs as uid $LUID with no capability"
check_lazy user "$ULOG" "$UM" "$pager" "$lines"
pass
