#!/bin/bash
# SPDX-License-Identifier: MIT
# A simulated reboot (ckptctl preserve, docs/preserve.md): a python3 job
# (state in memory, a child on pipes, a listening TCP socket, a file it
# keeps open on a tmpfs, an interval timer) is registered with ckptd;
# `--dump-all` dumps and kills it; the tmpfs is unmounted and a fresh one
# mounted (what a reboot does to /tmp, /dev/shm, /run); `--restore-all`
# brings it back: it carries on with its state, its file is back with its
# content, the listener accepts a new client, the images are removed.
# Also: a tree sharing a pipe with a process outside it is refused at
# registration (the tree untouched), a program run from a tmpfs is not (its
# executable is saved with its content: test_preserve_tmpfs_map.sh); one that opens such a FIFO after its
# registration is refused at --dump-all, left running and reported while
# the other is dumped; an exited tree leaves the list; the registration
# survives a restart of ckptd; the job's cwd, a directory of the tmpfs, is
# made again.
# Taken pids and clock continuity: `--restore-all` passes `--new-pidns`
# when a pid of the job is taken and always `--continue-clocks`; the test
# fails if the restorer lacks either.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

STATE=$T/state
TMPFS=$T/tmpfs
LOG=$T/job.log
diag_add "$LOG"

mkdir -p "$TMPFS"
mount -t tmpfs -o size=8m ckpt-e2e-tmpfs "$TMPFS" || fail "cannot mount a tmpfs on $TMPFS"
trap 'rc=$?; umount -l "$TMPFS" 2>/dev/null; (exit $rc); cleanup' EXIT

RESTORER_HELP=$("$CKPT_BUILD/ckpt-restore" --help 2>&1)
has_restorer_opt() { [[ $RESTORER_HELP == *"$1"* ]]; }

start_ckptd --state-dir "$STATE"

# --- refused at registration: a pipe to a process outside the tree ---------
# an anonymous pipe whose read end is a process outside the tree
setsid sleep 1001 </dev/null 2>/dev/null | cat >/dev/null &
poll_for 5 pgrep -f '^sleep 1001$' >/dev/null || fail "the piped sleeper did not start"
PIPED=$(pgrep -f '^sleep 1001$' | head -n 1)
TRACKED+=("$PIPED")
expect_fail "dump --check-only of it" "cannot be dumped.*outside the tree" dump "$PIPED" --check-only
assert_running "$PIPED"
expect_fail "a tree writing into a pipe read outside it" "cannot be preserved.*outside the tree" preserve "$PIPED"
assert_running "$PIPED"
ckptctl_run preserve --list --json || fail "--list failed"
grep -q '"preserved":\[\]' "$OUT" || { cat "$OUT"; fail "a refused tree is listed"; }
kill_tree "$PIPED"

# a program run from a tmpfs: registered, its executable will be saved with
# its content (test_preserve_tmpfs_map.sh restores one)
cp "$WL/sleeper" "$TMPFS/sleeper"
start_workload ONTMP "$T/ontmp.ready" -- "$TMPFS/sleeper" nanosleep "$T/ontmp.log" "$T/ontmp.ready" 1
ckptctl_run preserve "$ONTMP" --name ontmp || { cat "$ERR"; fail "a program run from a tmpfs was refused"; }
ONTMP_ID=$(<"$OUT")
assert_running "$ONTMP"
ckptctl_run preserve --cancel "$ONTMP_ID" || { cat "$ERR"; fail "--cancel $ONTMP_ID failed"; }
kill_tree "$ONTMP"
rm -f "$TMPFS/sleeper"

# --- the job ------------------------------------------------------------------
# its cwd is a directory on the tmpfs too, and the file is in it
mkdir -m 0750 "$TMPFS/work"
cd "$TMPFS/work" || fail "cd $TMPFS/work"
start_workload JOB "$T/job.ready" -- "$PYTHON" "$WLSRC/preserve_job.py" "$LOG" "$T/job.ready" \
	"$TMPFS/work/job.data" "$T/job.port"
cd "$T" || fail "cd $T"
wait_lines "$LOG" 10
PORT=$(<"$T/job.port")
CHILD=$(cat /proc/"$JOB"/task/*/children | tr -d ' ')
[[ $CHILD =~ ^[0-9]+$ ]] || fail "no child of the job ($CHILD)"
cp "$TMPFS/work/job.data" "$T/job.data.expected"
n0=$(line_count "$LOG")
ckptctl_run dump "$JOB" --check-only || { cat "$ERR"; fail "dump --check-only of the job failed"; }
grep -q "pass the dump's checks; left running untouched" "$OUT" || fail "check-only: $(cat "$OUT")"
compgen -G "/tmp/ckptctl-check.*" >/dev/null && fail "check-only left its scratch directory: $(compgen -G "/tmp/ckptctl-check.*")"
wait_lines "$LOG" $((n0 + 5)) 10
"$PYTHON" "$WLSRC/preserve_job.py" --verify "$LOG" || fail "the job was disturbed by --check-only"
stat -c '%a %u %g %Y' "$TMPFS/work/job.data" >"$T/job.data.stat"

ckptctl_run preserve "$JOB" --name longjob || { cat "$ERR"; fail "registration of pid $JOB failed"; }
ID=$(<"$OUT")
[[ $ID =~ ^[0-9]+$ ]] || fail "preserve printed '$ID', not an id"
log "registered pid $JOB as $ID"
assert_running "$JOB"
expect_fail "a second registration of the tree" "already registered" preserve "$JOB"

# a second job that passes its registration, then opens a FIFO whose other
# end this shell holds: --dump-all refuses it (left running, reported) and
# dumps the first one
mkfifo "$T/fifo"
start_workload J2 "$T/j2.ready" -- bash -c 'echo $$ >"$0.tmp"; mv "$0.tmp" "$0"; while [ ! -e "$1" ]; do sleep 0.1; done; exec 3>"$2"; exec sleep 1000' \
	"$T/j2.ready" "$T/j2.go" "$T/fifo"
ckptctl_run preserve "$J2" --name changes || { cat "$ERR"; fail "registration of pid $J2 failed"; }
ID2=$(<"$OUT")
exec 8<>"$T/fifo"
touch "$T/j2.go"
wait_for 10 "job 2 to open the FIFO" bash -c "ls -l /proc/$J2/fd 2>/dev/null | grep -q fifo"

# the registry is ckptd's file (root 0700) and survives a restart
[[ $(stat -c '%a %u' "$STATE") == "700 0" ]] || fail "state dir is $(stat -c '%a %u' "$STATE")"
[[ $(stat -c '%a %u' "$STATE/registry") == "600 0" ]] || fail "registry is $(stat -c '%a %u' "$STATE/registry")"
stop_ckptd
start_ckptd --state-dir "$STATE"
ckptctl_run preserve --list --json || fail "--list failed"
grep -q "\"id\":$ID,\"name\":\"longjob\",\"pid\":$JOB,\"uid\":0,\"state\":\"registered\"" "$OUT" ||
	{ cat "$OUT"; fail "registration $ID lost across a ckptd restart"; }

# --- shutdown -------------------------------------------------------------------
ckptctl_run preserve --dump-all --deadline 60 --json && fail "--dump-all succeeded although job 2 cannot be dumped"
grep -q "\"id\":$ID,.*\"state\":\"saved\"" "$OUT" || { cat "$OUT"; fail "job $ID not saved"; }
assert_tree_gone "$JOB"
assert_gone "$CHILD"
grep -q "\"id\":$ID2,\"name\":\"changes\",\"pid\":$J2,\"uid\":0,\"state\":\"registered\",\"last_result\":\"not dumped, the tree runs on: .*outside the tree" "$OUT" ||
	{ cat "$OUT"; fail "job 2 (a pipe outside the tree since its registration) not refused at --dump-all"; }
grep -q '"status":"error"' "$OUT" || fail "--dump-all with a refused job must say so (exit status 1)"
assert_running "$J2"
log "job 2 refused at --dump-all and left running: $(grep -o 'not dumped[^"]*' "$OUT" | cut -c1-150)"
kill_tree "$J2"
exec 8<&-
lines=$(line_count "$LOG")
T_DUMP=$(now_us)
[[ -s $STATE/preserved/$ID/inventory.img ]] || fail "no images in $STATE/preserved/$ID"
[[ $(stat -c '%a %u' "$STATE/preserved") == "700 0" ]] || fail "preserved/ is $(stat -c '%a %u' "$STATE/preserved")"
log "dumped after $lines lines"

# --- the reboot: the tmpfs is emptied ------------------------------------------------
rm -f "$TMPFS/work/job.data"
umount "$TMPFS" || fail "cannot unmount $TMPFS"
mount -t tmpfs -o size=8m ckpt-e2e-tmpfs "$TMPFS" || fail "cannot mount a fresh tmpfs"
[[ -e $TMPFS/work/job.data ]] && fail "the tmpfs still has the file"

TAKERS=()
if has_restorer_opt --new-pidns; then
	# other processes on the job's pids (clone3 with set_tid)
	for p in "$JOB" "$CHILD"; do
		"$PYTHON" - "$p" <<'PY' &
import ctypes, os, struct, sys, time
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
tid = (ctypes.c_int * 1)(pid)
args = struct.pack("QQQQQQQQQQQ", 0, 0, 0, 0, 17, 0, 0, 0, ctypes.addressof(tid), 1, 0)
buf = ctypes.create_string_buffer(args, len(args))
# clone3 with set_tid: variadic syscall(), so every argument a long
r = libc.syscall(ctypes.c_long(435), buf, ctypes.c_size_t(len(args)))
if r == 0:
    time.sleep(1000)
    os._exit(0)
sys.exit(0 if r > 0 else 1)
PY
		TAKERS+=($!)
	done
	sleep 0.5
	for p in "$JOB" "$CHILD"; do TRACKED+=("$p"); [[ -d /proc/$p ]] || fail "pid $p could not be taken"; done
	log "pids $JOB $CHILD taken by other processes"
else
	fail "ckpt-restore lacks --new-pidns"
fi
has_restorer_opt --continue-clocks || fail "ckpt-restore lacks --continue-clocks"
# the cycle must be longer than 10 s for the clock check to mean anything
while (($(now_us) - T_DUMP < 10000000)); do sleep 0.5; done

# --- boot -----------------------------------------------------------------------------
ckptctl_run preserve --restore-all --json || { cat "$OUT" "$ERR"; fail "--restore-all failed"; }
grep -q "\"id\":$ID,.*\"state\":\"registered\",\"last_result\":\"restored as pid" "$OUT" ||
	{ cat "$OUT"; fail "job $ID not restored"; }
NEWPID=$(sed -n 's/.*restored as pid \([0-9]*\).*/\1/p' "$OUT")
TRACKED+=("$NEWPID")
[[ -e $STATE/preserved/$ID ]] && fail "the images of $ID were not removed after its restore"
assert_running "$NEWPID"
wait_lines "$LOG" $((lines + 15)) 20
"$PYTHON" "$WLSRC/preserve_job.py" --verify "$LOG" || fail "the job did not carry on: $(tail -n 3 "$LOG")"
cmp -s "$TMPFS/work/job.data" "$T/job.data.expected" || fail "the tmpfs file is not back with its content"
[[ $(stat -c '%a %u %g %Y' "$TMPFS/work/job.data") == "$(<"$T/job.data.stat")" ]] ||
	fail "the tmpfs file is back as $(stat -c '%a %u %g %Y' "$TMPFS/work/job.data"), dumped $(<"$T/job.data.stat")"
log "tmpfs file back: $(stat -c '%s bytes, mode %a' "$TMPFS/work/job.data")"
[[ $(stat -c %a "$TMPFS/work") == 750 ]] || fail "the cwd on the tmpfs came back with mode $(stat -c %a "$TMPFS/work")"
[[ $(readlink /proc/"$NEWPID"/cwd) == "$TMPFS/work" ]] || fail "the restored job's cwd is $(readlink /proc/"$NEWPID"/cwd)"
log "cwd on the tmpfs made again: $TMPFS/work"
hello=$(timeout 5 "$PYTHON" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=5); print(s.makefile().readline().strip())' "$PORT") ||
	fail "the restored listener on port $PORT accepts no client"
[[ $hello == hello* ]] || fail "the restored listener said '$hello'"
wait_grep "$LOG" "accepted=1" 10
log "listener after restore: $hello"
((${#TAKERS[@]})) || fail "the job's pids were not taken"
if true; then
	# NSpid: the outer pid, then the one in the job's namespace
	newchild=$(cat /proc/"$NEWPID"/task/*/children | tr -d ' ')
	grep -qE "^NSpid:[[:space:]]+$NEWPID[[:space:]]+$JOB\$" /proc/"$NEWPID"/status ||
		fail "the restored root is not pid $JOB in its namespace: $(grep NSpid /proc/"$NEWPID"/status)"
	grep -qE "^NSpid:[[:space:]]+[0-9]+[[:space:]]+$CHILD\$" /proc/"$newchild"/status ||
		fail "the restored child is not pid $CHILD in its namespace: $(grep NSpid /proc/"$newchild"/status)"
	log "restored in a new pid namespace with its own pids"
fi
if has_restorer_opt --continue-clocks; then
	max=$(tail -n 1 "$LOG" | sed -n 's/.*maxstep=\([0-9.]*\).*/\1/p')
	awk -v m="$max" 'BEGIN { exit !(m < 2.0) }' ||
		fail "CLOCK_MONOTONIC stepped $max s across a cycle of more than 10 s"
	log "largest CLOCK_MONOTONIC step across the cycle: $max s"
else
	fail "ckpt-restore lacks --continue-clocks"
fi

# the restored job is registered again (for the next reboot); once it exits,
# it leaves the list
kill_tree "$NEWPID"
ckptctl_run preserve --list --json || fail "--list failed"
grep -q '"preserved":\[\]' "$OUT" || { cat "$OUT"; fail "an exited job stays listed"; }

# a registry that does not parse is set aside, never half used
stop_ckptd
printf 'CKPTPRS1\x05\x00\x00\x00\x00\x00\x00\x00garbage' >"$STATE/registry"
start_ckptd --state-dir "$STATE"
ckptctl_run preserve --list --json || fail "--list after a corrupt registry failed"
grep -q '"preserved":\[\]' "$OUT" || { cat "$OUT"; fail "a corrupt registry was used"; }
[[ -s $STATE/registry.bad ]] || fail "the corrupt registry was not set aside"
grep -q "set aside as registry.bad" "$CKPTD_LOG" || fail "ckptd did not say it set the registry aside"
log "a corrupt registry is set aside: $(grep -o 'registry: .*set aside' "$CKPTD_LOG" | tail -n 1)"
assert_ckptd_alive
pass
