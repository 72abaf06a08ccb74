#!/bin/bash
# SPDX-License-Identifier: MIT
# The truth contract (docs/security.md) for an ordinary user, created by the
# test: ckptd or its worker SIGKILLed at a point fixed by CKPT_PAUSE while
# ckptd dumps or restores the user's program for the user's own ckptctl.
# Exit 0 <=> a complete checkpoint or a running restored tree; otherwise the
# program runs on untouched (dump) or nothing of the tree runs (restore), no
# partial images are left and a dump.log named in an error exists. The
# user's client settles what ckptd left with the user's rights only (the
# directory's flock, the checkpoint's own verification, the restore's commit
# record in the client's memfd).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

ckptd_user_add UID_K ckpt-kill-u
chmod 0711 "$T"
install -d -m 0755 "$T/bin"
install -m 0755 "$WL/memhog" "$T/bin/memhog"
mkdir -m 0700 "$T/u" && chown ckpt-kill-u: "$T/u"
touch "$T/P.stdout" "$T/P.stderr" && chown ckpt-kill-u: "$T/P.stdout" "$T/P.stderr"
LOG=$T/u/memhog.log
diag_add "$T/c.out" "$T/c.err"

cd "$T/u" || fail "cd $T/u"
start_workload P "$T/u/memhog.ready" -- setpriv --reuid=ckpt-kill-u --regid="$(id -g ckpt-kill-u)" \
	--clear-groups --inh-caps=-all -- "$T/bin/memhog" 64 "$LOG" "$T/u/memhog.ready"
wait_lines "$LOG" 3 30

# user_bg ARGS...: the user's ckptctl in the background ($CPID), output in $T/c.*
user_bg()
{
	as_user ckpt-kill-u "$CKPT_BUILD/ckptctl" "$@" >"$T/c.out" 2>"$T/c.err" &
	CPID=$!
}
# killed_at STEP WHO ARGS...: a ckptd whose STEP pauses (the paused file is
# made by the user's side for steps of the worker: in $T/u), the user's
# ckptctl ARGS, WHO (ckptd, worker) SIGKILLed once paused; client exit in $KRC
killed_at()
{
	local step=$1 who=$2 go=$T/u/go.$1 victim
	shift 2
	rm -f "$go" "$go.paused"
	CKPT_PAUSE=$step:$go start_ckptd
	user_bg "$@"
	wait_for 60 "$step to pause" eval "[[ -e $go.paused ]] || ! kill -0 $CPID"
	[[ -e $go.paused ]] || fail "ckptctl $* ended before $step: $(cat "$T/c.err")"
	WORKER=$(pgrep -P "$CKPTD_PID" | head -n 1)
	case $who in
	ckptd) victim=$CKPTD_PID ;;
	worker) victim=$WORKER ;;
	both) victim="$WORKER $CKPTD_PID" ;;
	esac
	[[ $victim =~ ^[0-9\ ]+$ ]] || fail "no $who to kill at $step"
	# a restore's worker has copied the user's images (root's, in /tmp)
	SNAPS=
	[[ $1 == restore && -n $WORKER ]] && { SNAPS=$(snapshots_of "$WORKER") ||
		fail "no copy of the images by worker $WORKER at $step"; }
	kill -9 $victim
	[[ $who == worker ]] || untrack "$CKPTD_PID"
	touch "$go"
	wait "$CPID"
	KRC=$?
	log "$who killed at $step: ckptctl exit $KRC: $(tail -n 1 "$T/c.err")"
	[[ $who == worker ]] && stop_ckptd
	# answered: the copy is gone with its worker, however that ended
	[[ $who == both || -z $SNAPS ]] || ! snapshots_of "$WORKER" >/dev/null ||
		fail "worker $WORKER killed at $step: its copy of the images is left: $SNAPS"
}
snapshots_of() { compgen -G "/tmp/ckptd-restore.$1.*"; }
memhog_untouched()
{
	local n
	assert_running "$P"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$P/status" || fail "memhog is still traced"
	n=$(line_count "$LOG")
	wait_lines "$LOG" $((n + 2)) 10
}
new_dir() { rm -rf "$1" && mkdir -m 0700 "$1" && chown ckpt-kill-u: "$1"; }

# --- a dump: the worker killed while it copies the memory -------------------------
new_dir "$T/u/d1"
killed_at dump-memory worker dump "$P" -D "$T/u/d1"
((KRC != 0)) || fail "the user's ckptctl said the dump succeeded after its worker was killed"
memhog_untouched
[[ -z $(find "$T/u/d1" -name '*.img') ]] || fail "images left: $(ls "$T/u/d1")"
[[ $(stat -c %U "$T/u/d1/dump.log" 2>/dev/null) == ckpt-kill-u ]] ||
	fail "no dump.log of the user's for the killed worker: $(ls -l "$T/u/d1")"
logs_named_exist "$T/c.err"

# --- a dump: ckptd killed once the checkpoint is complete --------------------------
new_dir "$T/u/d2"
killed_at ckptd-dump-done ckptd dump "$P" -D "$T/u/d2"
((KRC == 0)) || fail "the checkpoint was complete, but the user's ckptctl failed: $(cat "$T/c.err")"
[[ -s $T/u/d2/inventory.img ]] || fail "exit 0 without inventory.img"
assert_gone "$P"
untrack "$P"

# --- a restore: ckptd killed after its worker reported, before it answered ---------
L0=$(line_count "$LOG")
killed_at ckptd-answer ckptd restore "$T/u/d2" --json
((KRC == 0)) || fail "the tree runs, but the user's ckptctl failed: $(cat "$T/c.err")"
grep -q 'restore was committed' "$T/c.err" || fail "ckptctl did not say how it knows: $(cat "$T/c.err")"
[[ $(json_get "$T/c.out" root_pid) == "$P" ]] || fail "answer: $(cat "$T/c.out")"
TRACKED+=("$P")
memhog_untouched
read -r _ ruid _ < <(grep '^Uid:' "/proc/$P/status")
[[ $ruid == "$UID_K" ]] || fail "the restored memhog runs as uid $ruid"
kill_tree "$P"
GONE_TIMEOUT=10 assert_gone "$P"

# --- a restore: the worker killed after ckpt-restore committed ---------------------
killed_at restorer-committed worker restore "$T/u/d2" --json
((KRC == 0)) || fail "the tree runs, but the user's ckptctl failed: $(cat "$T/c.err")"
[[ $(json_get "$T/c.out" root_pid) == "$P" ]] || fail "answer: $(cat "$T/c.out")"
memhog_untouched
kill_tree "$P"
GONE_TIMEOUT=10 assert_gone "$P"

# --- a restore: the worker killed while ckpt-restore restores the memory -----------
killed_at restore-memory worker restore "$T/u/d2" --json
((KRC != 0)) || fail "the user's ckptctl said the restore succeeded after its worker was killed"
GONE_TIMEOUT=10 assert_gone "$P"
poll_for 10 eval '[[ -z $(pgrep -x ckpt-restore -u ckpt-kill-u) ]]' || fail "ckpt-restore left"
logs_named_exist "$T/c.err"

# --- a restore: ckptd and its worker killed together (a cgroup killed, OOM) --------
# Nobody was left to remove the copy of the images: the next ckptd does.
killed_at restore-memory both restore "$T/u/d2" --json
((KRC != 0)) || fail "the user's ckptctl said the restore succeeded after ckptd was killed"
GONE_TIMEOUT=10 assert_gone "$P"
poll_for 10 eval '[[ -z $(pgrep -x ckpt-restore -u ckpt-kill-u) ]]' || fail "ckpt-restore left"
snapshots_of "$WORKER" >/dev/null || fail "the killed worker's copy went; this case tests nothing"
start_ckptd
! snapshots_of "$WORKER" >/dev/null || fail "a new ckptd left the dead worker's copy: $SNAPS"
stop_ckptd
pass
