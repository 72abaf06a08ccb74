#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptd's dump for a non-root caller writes, seals, checks and removes the
# caller's images with an empty effective capability set (and the caller's
# file ids); its capabilities are effective only while it works on the tree
# itself (ptrace, /proc, memory). The dump is paused inside each phase
# (CKPT_PAUSE) and the worker's CapEff and fsuid read from /proc.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

ckptd_user_add AUID ckpt-dpriv-a
chmod 0711 "$T"
install -d -m 0755 "$T/bin"
install -m 0755 "$WL/sleeper" "$T/bin/sleeper"
mkdir -m 0700 "$T/a" && chown ckpt-dpriv-a: "$T/a"
cd "$T/a" || fail "cd $T/a"

# worker_of_ckptd: the ckptd child that runs the job
worker_of_ckptd() { pgrep -P "$CKPTD_PID" | head -n 1; }

# paused_dump STEP DIR: start a user's dump with ckptd paused at STEP;
# sets W (the worker) once it is paused there.
paused_dump()
{
	local step=$1 dir=$2
	[[ -n $CKPTD_PID ]] && stop_ckptd
	rm -f "$T/a/go" "$T/a/go.paused"
	CKPT_PAUSE=$step:$T/a/go start_ckptd
	mkdir -m 0700 "$dir" && chown ckpt-dpriv-a: "$dir"
	as_user ckpt-dpriv-a "$CKPT_BUILD/ckptctl" dump "$P" -D "$dir" --leave-running \
		>"$T/dump.$step.out" 2>"$T/dump.$step.err" &
	DUMPER=$!
	diag_add "$T/dump.$step.err"
	wait_for 30 "the dump to pause at $step" test -e "$T/a/go.paused"
	W=$(worker_of_ckptd)
	[[ -n $W ]] || fail "no worker under ckptd $CKPTD_PID at $step"
}

release()
{
	touch "$T/a/go"
	wait "$DUMPER" || fail "the user's dump failed: $(cat "$T/dump.$1.err")"
}

cap_eff() { awk '/^CapEff:/ {print $2}' "/proc/$1/status"; }
fsuid() { awk '/^Uid:/ {print $5}' "/proc/$1/status"; }

start_workload P "$T/a/p.ready" -- setpriv --reuid=ckpt-dpriv-a --regid="$(id -g ckpt-dpriv-a)" \
	--clear-groups --inh-caps=-all -- "$T/bin/sleeper" nanosleep "$T/a/p.log" "$T/a/p.ready" 1

# copying memory: the worker works on the tree, with its capabilities
paused_dump dump-memory "$T/a/ck1"
eff=$(cap_eff "$W")
[[ $eff != 0000000000000000 ]] || fail "worker $W has no capability while it copies the tree's memory: the check below would prove nothing"
[[ $(fsuid "$W") == "$AUID" ]] || fail "worker $W: fsuid $(fsuid "$W"), expected the caller's $AUID"
log "copying memory: worker $W CapEff $eff, fsuid $(fsuid "$W")"
release dump-memory

# sealing the images (inventory.img written): nothing effective
paused_dump image-commit "$T/a/ck2"
eff=$(cap_eff "$W")
[[ $eff == 0000000000000000 ]] || fail "worker $W writes the caller's inventory.img with capabilities $eff effective"
[[ $(fsuid "$W") == "$AUID" ]] || fail "worker $W: fsuid $(fsuid "$W") while sealing, expected $AUID"
log "sealing: worker $W CapEff $eff"
release image-commit

# after the engine: ckptd's own seal (mac.img) and dump.log
paused_dump ckptd-dump-done "$T/a/ck3"
eff=$(cap_eff "$W")
[[ $eff == 0000000000000000 ]] || fail "worker $W finishes the caller's checkpoint with capabilities $eff effective"
log "after the dump: worker $W CapEff $eff"
release ckptd-dump-done

for d in ck1 ck2 ck3; do
	[[ -s $T/a/$d/inventory.img ]] || fail "$d: no inventory.img"
	[[ $(stat -c %u "$T/a/$d/inventory.img") == "$AUID" ]] || fail "$d/inventory.img is not the caller's"
done

# a process of the user's that made itself not dumpable: the user could not
# read it alone (ptrace, /proc are root's then), so ckptd refuses, saying why
start_workload N "$T/a/n.ready" -- setpriv --reuid=ckpt-dpriv-a --regid="$(id -g ckpt-dpriv-a)" \
	--clear-groups --inh-caps=-all -- "$PYTHON" -c '
import ctypes, os, sys, time
assert ctypes.CDLL(None).prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE 0
open(sys.argv[1] + ".tmp", "w").write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)' "$T/a/n.ready"
mkdir -m 0700 "$T/a/nd" && chown ckpt-dpriv-a: "$T/a/nd"
as_user ckpt-dpriv-a "$CKPT_BUILD/ckptctl" dump "$N" -D "$T/a/nd" >"$T/nd.out" 2>"$T/nd.err" &&
	fail "a user's dump of their non-dumpable process succeeded"
grep -q "pid $N is not dumpable (prctl(PR_SET_DUMPABLE, 0)" "$T/nd.err" ||
	fail "the refusal does not say why: $(cat "$T/nd.err")"
assert_running "$N"
log "a non-dumpable process: refused ($(cat "$T/nd.err"))"
pass
