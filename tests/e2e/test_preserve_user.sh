#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptctl preserve through ckptd for an unprivileged user (docs/preserve.md,
# docs/security.md): a user registers their own job; another user can
# neither register nor cancel it, nor see it; only root runs --dump-all and
# --restore-all; the registration survives a ckptd restart; the job is
# dumped as its owner (the images are the owner's, sealed for the owner)
# and restored as its owner (uid, no capabilities) after a simulated
# reboot, its tmpfs file back with its owner; a registered tree that exits
# leaves the list; the owner cancels a registration.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

ckptd_user_add AUID ckpt-pres-a
ckptd_user_add BUID ckpt-pres-b
STATE=$T/state
TMPFS=$T/tmpfs
chmod 0711 "$T"
JOBPY=$(user_copy "$WLSRC/preserve_job.py")
mkdir -m 0700 "$T/a" && chown ckpt-pres-a: "$T/a"
mkdir -p "$TMPFS"
mount -t tmpfs -o size=8m,mode=1777 ckpt-e2e-tmpfs "$TMPFS" || fail "cannot mount a tmpfs on $TMPFS"
trap 'rc=$?; umount -l "$TMPFS" 2>/dev/null; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cleanup' EXIT
LOG=$T/a/job.log
diag_add "$LOG"

start_ckptd --state-dir "$STATE"
cd "$T/a" || fail "cd $T/a"
start_workload JOB "$T/a/job.ready" -- setpriv --reuid=ckpt-pres-a --regid="$(id -g ckpt-pres-a)" \
	--clear-groups --inh-caps=-all -- "$PYTHON" "$JOBPY" "$LOG" "$T/a/job.ready" \
	"$TMPFS/a.data" "$T/a/job.port"
wait_lines "$LOG" 10
PORT=$(<"$T/a/job.port")
cp "$TMPFS/a.data" "$T/a.data.expected"

# another user cannot register it
user_ckptctl ckpt-pres-b preserve "$JOB" && fail "user b registered user a's job"
grep -q "not yours" "$ERR" || fail "b's registration not refused as not theirs: $(cat "$ERR")"
log "b's registration of a's job: refused: $(head -n 1 "$ERR" | cut -c1-160)"

user_ckptctl ckpt-pres-a preserve "$JOB" --name ajob || fail "a's registration failed: $(cat "$ERR")"
ID=$(<"$OUT")
[[ $ID =~ ^[0-9]+$ ]] || fail "preserve printed '$ID'"
assert_running "$JOB"

# b sees nothing, cancels nothing; a user runs no --dump-all / --restore-all
user_ckptctl ckpt-pres-b preserve --list --json || fail "b's --list failed"
grep -q '"preserved":\[\]' "$OUT" || { cat "$OUT"; fail "b sees a's registration"; }
user_ckptctl ckpt-pres-b preserve --cancel "$ID" && fail "b cancelled a's registration"
grep -q "no registration $ID" "$ERR" || fail "b's cancel: $(cat "$ERR")"
for op in --dump-all --restore-all; do
	user_ckptctl ckpt-pres-a preserve $op && fail "user a ran $op"
	grep -q "only root" "$ERR" || fail "a's $op: $(cat "$ERR")"
done
log "b cannot see or cancel it; users cannot run --dump-all / --restore-all"

# a tree of a's that exits leaves the list
start_workload S "$T/a/s.ready" -- setpriv --reuid=ckpt-pres-a --regid="$(id -g ckpt-pres-a)" \
	--clear-groups --inh-caps=-all -- "$WL/sleeper" nanosleep "$T/a/s.log" "$T/a/s.ready" 1
user_ckptctl ckpt-pres-a preserve "$S" --name short || fail "a's second registration failed: $(cat "$ERR")"
SID_=$(<"$OUT")
user_ckptctl ckpt-pres-a preserve --list --json || fail "a's --list failed"
grep -q "\"id\":$SID_," "$OUT" || { cat "$OUT"; fail "the second registration is not listed"; }
kill_tree "$S"
user_ckptctl ckpt-pres-a preserve --list --json || fail "a's --list failed"
grep -q "\"id\":$SID_," "$OUT" && { cat "$OUT"; fail "an exited tree is still listed"; }
log "an exited tree leaves the list"

# the registration survives a ckptd restart
stop_ckptd
start_ckptd --state-dir "$STATE"
user_ckptctl ckpt-pres-a preserve --list --json || fail "a's --list failed"
grep -q "\"id\":$ID,\"name\":\"ajob\",\"pid\":$JOB,\"uid\":$AUID,\"state\":\"registered\"" "$OUT" ||
	{ cat "$OUT"; fail "a's registration lost across a ckptd restart"; }

# shutdown: dumped as its owner
ckptctl_run preserve --dump-all --json || { cat "$OUT" "$ERR"; fail "--dump-all failed"; }
grep -q "\"id\":$ID,.*\"state\":\"saved\"" "$OUT" || { cat "$OUT"; fail "a's job not saved"; }
assert_tree_gone "$JOB"
[[ $(stat -c %U "$STATE/preserved/$ID/inventory.img") == ckpt-pres-a ]] ||
	fail "the images are not a's: $(stat -c %U "$STATE/preserved/$ID/inventory.img")"
[[ -s $STATE/preserved/$ID/mac.img ]] || fail "the images are not sealed"
as_user ckpt-pres-a ls "$STATE/preserved/$ID" >/dev/null 2>&1 && fail "a reaches the preserved images by path"
lines=$(line_count "$LOG")

# reboot
umount "$TMPFS" || fail "cannot unmount $TMPFS"
mount -t tmpfs -o size=8m,mode=1777 ckpt-e2e-tmpfs "$TMPFS" || fail "cannot mount a fresh tmpfs"

# boot: restored as its owner. Its stdout and stderr are root's files
# (start_workload's), which the owner may not open for writing: that
# restore fails, and the job stays "failed" with its images for a later try
ckptctl_run preserve --restore-all --json && fail "--restore-all restored a job whose files its owner cannot open"
grep -q "\"id\":$ID,.*\"state\":\"failed\",\"last_result\":\"restore failed (images kept): .*JOB.stdout.*Permission denied" "$OUT" ||
	{ cat "$OUT"; fail "the failed restore is not reported"; }
[[ -s $STATE/preserved/$ID/inventory.img ]] || fail "the images of the failed restore are gone"
ckptctl_run preserve --list || fail "--list failed"
grep -qE "^ +$ID +ajob .* failed +restore failed" "$OUT" || { cat "$OUT"; fail "--list does not show the failure"; }
log "failed restore kept: $(grep -E "^ +$ID " "$OUT" | cut -c1-160)"
chown ckpt-pres-a: "$T/JOB.stdout" "$T/JOB.stderr"
ckptctl_run preserve --restore-all --json || { cat "$OUT" "$ERR"; fail "--restore-all failed"; }
NEWPID=$(sed -n 's/.*restored as pid \([0-9]*\).*/\1/p' "$OUT")
[[ -n $NEWPID ]] || { cat "$OUT"; fail "a's job not restored"; }
TRACKED+=("$NEWPID")
assert_running "$NEWPID"
read -r _ r e s f < <(grep '^Uid:' /proc/"$NEWPID"/status)
[[ "$r $e $s $f" == "$AUID $AUID $AUID $AUID" ]] || fail "the restored job runs as uid $r $e $s $f"
grep -q '^CapEff:[[:space:]]*0*$' /proc/"$NEWPID"/status || fail "the restored job has capabilities"
wait_lines "$LOG" $((lines + 10)) 20
"$PYTHON" "$WLSRC/preserve_job.py" --verify "$LOG" || fail "the job did not carry on: $(tail -n 3 "$LOG")"
cmp -s "$TMPFS/a.data" "$T/a.data.expected" || fail "the tmpfs file is not back"
[[ $(stat -c %U "$TMPFS/a.data") == ckpt-pres-a ]] || fail "the tmpfs file is back as $(stat -c %U "$TMPFS/a.data")"
hello=$(timeout 5 "$PYTHON" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=5); print(s.makefile().readline().strip())' "$PORT") ||
	fail "the restored listener accepts no client"
log "restored as uid $AUID without capabilities; listener: $hello"

# b cannot cancel the registration of the restored job either; a can
user_ckptctl ckpt-pres-b preserve --cancel "$ID" && fail "b cancelled a's registration"
user_ckptctl ckpt-pres-a preserve --cancel "$ID" || fail "a cannot cancel: $(cat "$ERR")"
user_ckptctl ckpt-pres-a preserve --list --json || fail "a's --list failed"
grep -q '"preserved":\[\]' "$OUT" || { cat "$OUT"; fail "a cancelled registration is listed"; }
assert_running "$NEWPID"
kill_tree "$NEWPID"
assert_ckptd_alive
pass
