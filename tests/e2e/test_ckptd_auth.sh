#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptd authorization with a real unprivileged user (ckpt-test, created if
# missing): it dumps and restores its own program; it is refused root's and
# another user's (nobody's) program, an image of root's program, one of its
# own images edited to say uid 0, and getting back a root-only file its
# program had open. Each refusal names the pid or image and the reason, and
# nothing was touched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

TUSER=ckpt-test
if ! id -u "$TUSER" >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin "$TUSER" ||
		fail "cannot create the test user $TUSER"
	log "created user $TUSER"
fi
TUID=$(id -u "$TUSER")
TGID=$(id -g "$TUSER")

chmod 0711 "$T"
U=$T/u
mkdir "$U" && chown "$TUID:$TGID" "$U"
# The programs the users run must be theirs to open and map: the build tree
# may sit in a directory only root can enter (a clone under mktemp -d), and a
# restore made for a user reopens the executable with that user's rights.
install -d -m 0755 "$T/bin"
install -m 0755 "$WL/sleeper" "$T/bin/sleeper"
# and so must their working directory (restored with the user's rights too)
cd "$T" || fail "cd $T"
cat >"$T/ckptctl-user" <<WRAP
#!/bin/sh
exec setpriv --reuid=$TUID --regid=$TGID --clear-groups --inh-caps=-all -- "$CKPT_BUILD/ckptctl" "\$@"
WRAP
chmod 0755 "$T/ckptctl-user"
ROOT_CKPTCTL=$CKPTCTL
user_ctl() { CKPTCTL=$T/ckptctl-user ckptctl_run "$@"; }

start_ckptd

uid_of() { awk '/^Uid:/ {print $2, $3, $4; exit}' "/proc/$1/status"; }

# --- its own program: dump and restore --------------------------------------
# (its stdout and stderr are the user's files: ckpt-restore reopens them with
# the user's rights)
touch "$T/US.stdout" "$T/US.stderr" "$T/UF.stdout" "$T/UF.stderr"
chown "$TUID:$TGID" "$T/US.stdout" "$T/US.stderr" "$T/UF.stdout" "$T/UF.stderr"
start_workload US "$U/us.ready" -- setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
	--inh-caps=-all -- "$T/bin/sleeper" nanosleep "$U/us.log" "$U/us.ready" 1
diag_add "$U/us.log"
wait_grep "$U/us.log" '^tick 1$'
[[ $(uid_of "$US") == "$TUID $TUID $TUID" ]] || fail "workload $US does not run as $TUSER"
user_ctl dump "$US" -D "$U/us.img" || fail "$TUSER could not dump its own program: $(cat "$ERR")"
[[ $(stat -c %u "$U/us.img/inventory.img") == "$TUID" ]] || fail "images are not owned by $TUSER"
assert_tree_gone "$US"
CKPTCTL=$T/ckptctl-user ckpt_restore "$U/us.img"
[[ $RESTORED_PID == "$US" ]] || fail "restored pid $RESTORED_PID, dumped $US"
[[ $(uid_of "$US") == "$TUID $TUID $TUID" ]] || fail "restored task runs as $(uid_of "$US")"
grep -q '^CapEff:[[:space:]]*0000000000000000' "/proc/$US/status" || fail "restored task has capabilities"
ticks=$(grep -c '^tick' "$U/us.log")
wait_grep "$U/us.log" "^tick $((ticks + 2))\$" 10
log "$TUSER dumped and restored its own program (uid $TUID, no capabilities)"
kill_tree "$US"

# --- root's and nobody's programs: refused before anything is seized --------
start_workload RS "$T/rs.ready" -- "$WL/sleeper" nanosleep "$T/rs.log" "$T/rs.ready" 1
user_ctl dump "$RS" -D "$U/rs.img" && fail "$TUSER dumped root's program"
grep -qE "pid $RS: real uid is 0, not yours \($TUID\)" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
log "root's program: $(head -n 1 "$ERR")"
assert_running "$RS"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$RS/status" || fail "root's program is traced after the refusal"
[[ -e $U/rs.img ]] && fail "a refused dump left $U/rs.img"

NBD=$T/nobody
mkdir "$NBD" && chown nobody "$NBD"
start_workload NB "$NBD/nb.ready" -- setpriv --reuid=nobody --regid=nogroup --clear-groups \
	--inh-caps=-all -- "$T/bin/sleeper" pause "$NBD/nb.log" "$NBD/nb.ready"
user_ctl dump "$NB" -D "$U/nb.img" && fail "$TUSER dumped nobody's program"
grep -qE "pid $NB: real uid is [0-9]+, not yours" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
assert_running "$NB"
log "nobody's program: $(head -n 1 "$ERR")"
kill_tree "$NB"

# --- an image of root's program: refused -------------------------------------
CKPTCTL=$ROOT_CKPTCTL ckpt_dump "$RS" "$T/rs.img"
chmod 0755 "$T/rs.img"
assert_tree_gone "$RS"
# its files are root's (0600): the service reads them as the user, so no
user_ctl restore "$T/rs.img" && fail "$TUSER restored root's program"
grep -qE "cannot open inventory.img as uid $TUID: Permission denied" "$ERR" ||
	fail "unclear refusal: $(cat "$ERR")"
log "root's images (0600): $(head -n 1 "$ERR")"
# readable, they are refused for what they say
chmod 0644 "$T/rs.img"/*
user_ctl restore "$T/rs.img" && fail "$TUSER restored root's program"
grep -qE "image core-$RS.img: real uid is 0, not yours" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
gone "$RS" || fail "pid $RS exists after a refused restore"
log "image of root's program: $(head -n 1 "$ERR")"

# --- its own image edited to say uid 0: refused -------------------------------
start_workload UF "$U/uf.ready" -- setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
	--inh-caps=-all -- "$T/bin/sleeper" pause "$U/uf.log" "$U/uf.ready"
user_ctl dump "$UF" -D "$U/uf.img" || fail "$TUSER could not dump its own program: $(cat "$ERR")"
assert_tree_gone "$UF"
"$PYTHON" - "$CKPT_SRC/tests/e2e" "$U/uf.img" "core-$UF.img" <<'PY' || fail "cannot forge the image"
import os, sys
sys.path.insert(0, sys.argv[1])
import imgforge as f
d, name = sys.argv[2], sys.argv[3]
path = os.path.join(d, name)
head, recs = f.read_records(path)
core = f.parse(recs[0])
for fld in core:
    if fld[0] == 10:  # CoreEntry.creds
        creds = f.parse(fld[2])
        for c in creds:
            if c[0] in (1, 2, 3, 4):  # uid, euid, suid, fsuid
                c[2] = 0
        fld[2] = f.serialize(creds)
recs[0] = f.serialize(core)
data = f.write_records(path, head, recs)
f.fix_inventory(d, name, data)
PY
"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" sums "$U/uf.img" >/dev/null || fail "forged image has bad sums"
user_ctl restore "$U/uf.img" && fail "$TUSER restored an image edited to uid 0"
grep -qE "image core-$UF.img: real uid is 0, not yours" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
gone "$UF" || fail "pid $UF exists after a refused restore"
log "image edited to uid 0: $(head -n 1 "$ERR")"

# --- a thread's own credentials edited to say uid 0: refused too ---------------
start_workload UT "$U/ut.ready" -- setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
	--inh-caps=-all -- "$T/bin/sleeper" pause "$U/ut.log" "$U/ut.ready"
user_ctl dump "$UT" -D "$U/ut.img" || fail "$TUSER could not dump its own program: $(cat "$ERR")"
assert_tree_gone "$UT"
"$PYTHON" - "$CKPT_SRC/tests/e2e" "$U/ut.img" "core-$UT.img" <<'PY' || fail "cannot forge the image"
import os, sys
sys.path.insert(0, sys.argv[1])
import imgforge as f
d, name = sys.argv[2], sys.argv[3]
path = os.path.join(d, name)
head, recs = f.read_records(path)
core = f.parse(recs[0])
creds = f.parse(next(fld[2] for fld in core if fld[0] == 10))  # CoreEntry.creds
for c in creds:
    if c[0] in (1, 2, 3, 4):  # uid, euid, suid, fsuid
        c[2] = 0
thread = next(fld for fld in core if fld[0] == 13)  # CoreEntry.threads[0]
thread[2] = f.serialize(f.parse(thread[2]) + [[14, 2, f.serialize(creds)]])  # ThreadCore.creds
recs[0] = f.serialize(core)
data = f.write_records(path, head, recs)
f.fix_inventory(d, name, data)
PY
user_ctl restore "$U/ut.img" && fail "$TUSER restored an image whose thread says uid 0"
grep -qE "image core-$UT.img thread $UT: real uid is 0, not yours" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
gone "$UT" || fail "pid $UT exists after a refused restore"
log "thread credentials edited to uid 0: $(head -n 1 "$ERR")"

# --- its own program holding a root-only file open: not restored ----------------
# The restorer opens files with the caller's rights: an fd the program got
# from root (here its stdout, a root-owned 0644 file open for writing) is
# not handed back to the user.
start_workload UR "$U/ur.ready" -- setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
	--inh-caps=-all -- "$T/bin/sleeper" pause "$U/ur.log" "$U/ur.ready"
user_ctl dump "$UR" -D "$U/ur.img" || fail "$TUSER could not dump its own program: $(cat "$ERR")"
assert_tree_gone "$UR"
user_ctl restore "$U/ur.img" && fail "$TUSER got back a root-owned file open for writing"
grep -qE "cannot open regular file $T/UR.stdout .*Permission denied" "$ERR" ||
	fail "unclear refusal: $(cat "$ERR")"
gone "$UR" || fail "pid $UR exists after a failed restore"
log "root-only file: $(head -n 1 "$ERR")"

# --- ps: the user sees only its own jobs --------------------------------------
user_ctl ps --json || fail "ps as $TUSER failed: $(cat "$ERR")"
grep -q '"uid":0,' "$OUT" && fail "$TUSER sees root's jobs: $(cat "$OUT")"
grep -q "\"uid\":$TUID," "$OUT" || fail "$TUSER does not see its own jobs"

assert_ckptd_alive
pass
