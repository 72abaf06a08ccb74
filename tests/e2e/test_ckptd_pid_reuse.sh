#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptd's restore worker puts ckpt-restore into the client's cgroups, as
# root, found from the pid SO_PEERCRED gave at connect. A client that
# connects, leaves the request to a child and exits frees that pid; made
# deterministic here (CKPT_PAUSE before the worker reads the cgroups), the
# pid goes to a root process in a cgroup of the pids controller limited to
# that one process. ckptd must notice the client is gone (a pidfd of the
# peer, SO_PEERPIDFD) and not join the cgroups its pid now has: the user's
# restore then succeeds, instead of running in (and failing on) the other
# process's cgroup. The same with --cgroups=caller, where the client's
# cgroups decide where the tree goes: refused, the client being gone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

PIDS_MNT=$(findmnt -t cgroup -n -o TARGET,OPTIONS | awk '$2 ~ /(^|,)pids(,|$)/ {print $1; exit}')
[[ -n $PIDS_MNT ]] || fail "no cgroup v1 pids hierarchy mounted (these machines have one)"
VCG=$PIDS_MNT/ckpt-victim-$$
ckptd_user_add UID1 ckpt-reuse-u
trap 'rc=$?; [[ -n ${VICTIM:-} ]] && kill -9 "$VICTIM" 2>/dev/null; sleep 0.2; rmdir "$VCG" 2>/dev/null; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cleanup' EXIT
mkdir "$VCG" && echo 1 >"$VCG/pids.max"

chmod 0711 "$T"
install -d -m 0755 "$T/bin" && install -m 0755 "$WL/sleeper" "$T/bin/sleeper"
mkdir -m 0700 "$T/u" && chown ckpt-reuse-u: "$T/u"
touch "$T/u/out" "$T/P.stderr" && chown ckpt-reuse-u: "$T/u/out" "$T/P.stderr"
cd "$T/u" || fail "cd $T/u"
start_workload P "$T/u/p.ready" --stdout "$T/u/out" -- setpriv --reuid=ckpt-reuse-u --regid="$(id -g ckpt-reuse-u)" \
	--clear-groups --inh-caps=-all -- "$T/bin/sleeper" nanosleep "$T/u/p.log" "$T/u/p.ready" 1
start_ckptd
mkdir -m 0700 "$T/u/ck" && chown ckpt-reuse-u: "$T/u/ck"
user_ckptctl ckpt-reuse-u dump "$P" -D "$T/u/ck" || fail "the user's dump failed: $(cat "$ERR")"
assert_tree_gone "$P"
stop_ckptd

CKPT_PAUSE=ckptd-join-cgroups:$T/go start_ckptd
chmod 0777 "$T/u" # (the paused ckpt-restore child, root until it becomes the user, and the client write here)
RAWREQ=$(user_copy "$CKPT_SRC/tests/e2e/ckptd_rawreq.py")
RAWREQ_ORPHAN=$T/u/client.pid as_user ckpt-reuse-u "$PYTHON" "$RAWREQ" \
	"$SOCK" restore "$T/u/ck" >"$T/req.out" 2>"$T/req.err" &
REQ=$!
diag_add "$T/req.out" "$T/req.err"
wait_for 20 "the worker to pause before it reads the client's cgroups" test -e "$T/go.paused"
# take_client_pid CG: a root process ($VICTIM) takes the pid of the client
# that exited ($CPID), in cgroup CG
take_client_pid()
{
	read -r CPID <"$T/u/client.pid"
	gone "$CPID" || fail "the connecting client $CPID still runs"
	for try in 1 2 3 4 5; do
		echo $((CPID - 1)) >/proc/sys/kernel/ns_last_pid
		sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 300' sh "$1" &
		VICTIM=$!
		disown "$VICTIM"
		[[ $VICTIM == "$CPID" ]] && break
		kill -9 "$VICTIM"
		VICTIM=
	done
	[[ -n $VICTIM ]] || fail "could not start a process on pid $CPID"
	wait_for 5 "the victim in $1" grep -qx "$VICTIM" "$1/cgroup.procs"
}

# a root process takes the client's pid, in a cgroup that holds only it
take_client_pid "$VCG"
log "pid $CPID (the client's, which exited) is now root's $VICTIM in $VCG (pids.max 1)"

touch "$T/go"
wait "$REQ" # (the connecting process: it exited at once; its child answers)
wait_for 60 "the answer to the user's restore" grep -q '^status' "$T/req.out"
log "the user's restore: $(cat "$T/req.out")"
grep -q '^status 0 ' "$T/req.out" || fail "the user's restore failed: ckptd put it into the cgroup of the process that took the client's pid"
grep -q "the client (pid $CPID) is gone" "$T/u/ck/restore.log" ||
	fail "restore.log does not say the client was gone: $(cat "$T/u/ck/restore.log")"
assert_tree_running "$P"
grep -qx "$P" "$VCG/cgroup.procs" && fail "the restored program is in $VCG"
kill_tree "$P"
assert_tree_gone "$P"
kill -9 "$VICTIM"
VICTIM=
stop_ckptd

# --- --cgroups=caller: ckpt-restore finds "the caller's cgroups" from the
# client's /proc/PID/cgroup. Its pid now belongs to root's process in a
# cgroup the user may write ($VCG2: the restore would succeed there, in the
# wrong place): refused, the client being gone, instead of read from the
# other process (the worker opens the file while the client's pidfd says it
# lives, and ckpt-restore reads that open file).
VCG2=$PIDS_MNT/ckpt-victim2-$$
mkdir "$VCG2" && chown -R ckpt-reuse-u: "$VCG2"
trap 'rc=$?; [[ -n ${VICTIM:-} ]] && kill -9 "$VICTIM" 2>/dev/null; sleep 0.2; rmdir "$VCG" "$VCG2" 2>/dev/null; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cleanup' EXIT
rm -f "$T/go" "$T/go.paused" "$T/u/client.pid" "$T/u/ck/restore.log"
CKPT_PAUSE=ckptd-worker:$T/go start_ckptd
RAWREQ_CGROUPS=caller RAWREQ_ORPHAN=$T/u/client.pid as_user ckpt-reuse-u "$PYTHON" "$RAWREQ" \
	"$SOCK" restore "$T/u/ck" >"$T/req.out" 2>"$T/req.err" &
REQ=$!
wait_for 20 "the worker to pause before it opens the client's cgroups" test -e "$T/go.paused"
take_client_pid "$VCG2"
touch "$T/go"
wait "$REQ"
wait_for 60 "the answer to the user's restore" grep -q '^status' "$T/req.out"
log "the user's --cgroups=caller restore: $(cat "$T/req.out")"
grep -q '^status 0 ' "$T/req.out" &&
	fail "restored with --cgroups=caller into the cgroups of the process that took the client's pid"
grep -q 'are gone, so your cgroups' "$T/req.out" || fail "not refused for the client being gone: $(cat "$T/req.out")"
gone "$P" || fail "a task of the refused restore runs"
[[ $(wc -l <"$VCG2/cgroup.procs") == 1 ]] || fail "$VCG2 holds more than the victim: $(cat "$VCG2/cgroup.procs")"
pass
