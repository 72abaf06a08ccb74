#!/bin/bash
# SPDX-License-Identifier: MIT
# ckptd gives a user nothing the user could not do alone. Two unprivileged
# users made for the test (A, B):
# - A's restore or dump aimed at a root-owned directory A cannot write (like
#   /etc/bash_completion.d), or sent as an O_PATH fd of a 0700 root
#   directory, is refused naming the directory, and no file appears there;
# - A cannot have B's 0700 checkpoint directory read (O_PATH fd): refused
#   before anything is copied (the worker is paused where a copy would
#   exist); B's own restore works on a copy only root can read;
# - an unlisted 8 GiB sparse file in A's image directory is not copied, and
#   images declaring more than --max-restore-bytes are refused;
# - an image swapped for a FIFO is refused at once, not waited on;
# - A's 5th concurrent job is refused while B still gets a slot.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

ckptd_user_add AUID ckpt-atk-a
ckptd_user_add BUID ckpt-atk-b
chmod 0711 "$T"
install -d -m 0755 "$T/bin"
install -m 0755 "$WL/sleeper" "$T/bin/sleeper"
cd "$T" || fail "cd $T"
RAW=$CKPT_SRC/tests/e2e/ckptd_rawreq.py
chmod 0755 "$RAW" 2>/dev/null
install -m 0755 "$RAW" "$T/bin/rawreq.py"
mkdir -m 0700 "$T/a" "$T/b" && chown ckpt-atk-a: "$T/a" && chown ckpt-atk-b: "$T/b"
chmod 0711 "$T/b" # B's checkpoint itself (0700) is what protects it

empty() { [[ -z $(ls -A "$1") ]]; }
snapshots() { find /tmp -maxdepth 1 -name 'ckptd-restore.*' 2>/dev/null | sort; }

# user_program VAR USER DIR NAME: a sleeper of USER logging in DIR
user_program()
{
	local var=$1 u=$2 d=$3 n=$4
	# its output files are the user's: a restore for the user reopens them
	touch "$T/$var.stdout" "$T/$var.stderr" && chown "$u:" "$T/$var.stdout" "$T/$var.stderr"
	start_workload "$var" "$d/$n.ready" -- setpriv --reuid="$u" \
		--regid="$(id -g "$u")" --clear-groups --inh-caps=-all -- "$T/bin/sleeper" \
		nanosleep "$d/$n.log" "$d/$n.ready" 1
}

# --- 1: directories A may not write ------------------------------------------
start_ckptd
ETC=$T/etc-like
mkdir -m 0755 "$ETC"
touch "$ETC/restore.log" # an existing entry must not be replaced either
user_ckptctl ckpt-atk-a restore "$ETC" && fail "A restored from $ETC"
log "restore from a root dir: $(head -n 1 "$ERR")"
[[ $(ls -A "$ETC") == restore.log && $(stat -c %u "$ETC/restore.log") == 0 ]] ||
	fail "a refused restore changed $ETC: $(ls -lA "$ETC")"
user_program AP ckpt-atk-a "$T/a" ap
user_ckptctl ckpt-atk-a dump "$AP" -D "$ETC" && fail "A dumped into $ETC"
grep -q "may not write into the image directory" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
log "dump into a root dir: $(head -n 1 "$ERR")"
[[ $(ls -A "$ETC") == restore.log ]] || fail "a refused dump left files in $ETC: $(ls -A "$ETC")"
assert_running "$AP"

SECRET=$T/secret
mkdir -m 0700 "$SECRET"
for kind in restore dump; do
	as_user ckpt-atk-a "$T/bin/rawreq.py" "$SOCK" "$kind" "$SECRET" "$AP" >"$T/raw.out" 2>&1 &&
		fail "A's $kind through an O_PATH fd of a 0700 root directory succeeded"
	grep -q "may not .* the image directory you sent" "$T/raw.out" ||
		fail "unclear refusal of the O_PATH $kind: $(cat "$T/raw.out")"
	log "O_PATH $kind: $(cat "$T/raw.out")"
	empty "$SECRET" || fail "the O_PATH $kind left $(ls -A "$SECRET") in the 0700 root directory"
done
assert_running "$AP"
# the checkpoints of parts 2 and 3
user_program BP ckpt-atk-b "$T/b" bp
user_ckptctl ckpt-atk-b dump "$BP" -D "$T/b/ck" || fail "B's dump failed: $(cat "$ERR")"
[[ $(stat -c %a "$T/b/ck") == 700 ]] || fail "ckptctl made $T/b/ck $(stat -c %a "$T/b/ck"), not 0700"
[[ $(stat -c %u "$T/b/ck/inventory.img") == "$BUID" ]] || fail "B's images are not B's"
assert_tree_gone "$BP"
user_ckptctl ckpt-atk-a dump "$AP" -D "$T/a/ck" || fail "A's dump failed: $(cat "$ERR")"
assert_tree_gone "$AP"
stop_ckptd

# --- 2, 3: B's checkpoint, A's sparse file, limits -----------------------------
# paused after the copy and the checks, just before ckpt-restore
CKPT_PAUSE=ckptd-worker:$T/go2 start_ckptd
before=$(snapshots)
as_user ckpt-atk-a "$T/bin/rawreq.py" "$SOCK" restore "$T/b/ck" >"$T/raw.out" 2>&1 &
RAWPID=$!
wait_for 20 "A's restore of B's directory to end or pause" \
	eval '! kill -0 $RAWPID 2>/dev/null || [[ -e $T/go2.paused ]]'
if [[ -e $T/go2.paused ]]; then
	for f in /tmp/ckptd-restore.*/*; do
		as_user ckpt-atk-a cat "$f" >/dev/null 2>&1 && fail "A read $f, a copy of B's images"
	done
	fail "A's request for B's directory got as far as a copy of the images"
fi
wait "$RAWPID" && fail "A restored B's checkpoint"
grep -q "may not read the image directory you sent" "$T/raw.out" ||
	fail "unclear refusal: $(cat "$T/raw.out")"
log "B's 0700 directory through A's O_PATH fd: $(cat "$T/raw.out")"
[[ $(snapshots) == "$before" ]] || fail "a copy was made for A's refused request"
[[ -e $T/b/ck/restore.log ]] && fail "A's request created restore.log in B's directory"

# B's own restore, paused with its copy made: root's alone
as_user ckpt-atk-b "$CKPT_BUILD/ckptctl" restore "$T/b/ck" --json >"$T/rb.out" 2>"$T/rb.err" &
RB=$!
wait_for 20 "B's restore to pause" test -e "$T/go2.paused"
snap=$(comm -13 <(echo "$before") <(snapshots))
[[ -n $snap ]] || fail "no copy for B's restore"
[[ $(stat -c '%u %a' "$snap") == "0 700" ]] || fail "copy $snap is $(stat -c '%u %a' "$snap")"
for f in "$snap"/i/*; do
	[[ $(stat -c '%u %a' "$f") == "0 640" ]] || fail "copy $f is $(stat -c '%u %a' "$f")"
	as_user ckpt-atk-a cat "$f" >/dev/null 2>&1 && fail "A could read $f"
done
log "B's copy $snap: 0700 root, files 0640 root, unreadable for A"
touch "$T/go2"
wait "$RB" || fail "B's restore failed: $(cat "$T/rb.err")"
RESTORED=$(json_get "$T/rb.out" root_pid)
[[ $RESTORED == "$BP" ]] || fail "B's restore gave pid $RESTORED"
TRACKED+=("$BP")
kill_tree "$BP"
[[ -z $(comm -13 <(echo "$before") <(snapshots)) ]] || fail "the copy was not removed"
stop_ckptd
rm -f "$T/go2" "$T/go2.paused"

# 3: an unlisted 8 GiB sparse file is not copied
CKPT_PAUSE=ckptd-worker:$T/go3 start_ckptd
as_user ckpt-atk-a truncate -s 8G "$T/a/ck/zz-unlisted.img"
before=$(snapshots)
as_user ckpt-atk-a "$CKPT_BUILD/ckptctl" restore "$T/a/ck" --json >"$T/ra.out" 2>"$T/ra.err" &
RA=$!
wait_for 30 "A's restore to pause" test -e "$T/go3.paused"
snap=$(comm -13 <(echo "$before") <(snapshots))
[[ -n $snap ]] || fail "no copy for A's restore"
[[ -e $snap/i/zz-unlisted.img ]] && fail "the unlisted file was copied"
used=$(du -sk "$snap" | cut -f1)
((used < 65536)) || fail "the copy takes $used KiB"
log "copy of A's images: ${used} KiB, no unlisted file"
touch "$T/go3"
wait "$RA" || fail "A's restore failed: $(cat "$T/ra.err")"
TRACKED+=("$AP")
kill_tree "$AP"
rm -f "$T/a/ck/zz-unlisted.img"
stop_ckptd

start_ckptd --max-restore-bytes 1000
user_ckptctl ckpt-atk-a restore "$T/a/ck" && fail "A restored past --max-restore-bytes"
grep -q "declare more than 1000 bytes" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
log "limit: $(head -n 1 "$ERR")"
stop_ckptd

# a FIFO in place of a listed image: refused, not waited on
start_ckptd
core=$(cd "$T/a/ck" && ls core-*.img | head -n 1)
cp -p "$T/a/ck/$core" "$T/core.keep"
rm "$T/a/ck/$core" && as_user ckpt-atk-a mkfifo "$T/a/ck/$core"
CKPTCTL_TIMEOUT=20 user_ckptctl ckpt-atk-a restore "$T/a/ck" && fail "restored with a FIFO image"
((RC != 124)) || fail "the restore hung on a FIFO"
grep -q "not a regular file" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
log "FIFO: $(head -n 1 "$ERR")"

# --- 5: four jobs per user ----------------------------------------------------
stop_ckptd
CKPT_PAUSE=ckptd-restore-start:$T/go5 start_ckptd
pids=()
for i in 1 2 3 4 5; do
	mkdir -m 0700 "$T/a/e$i" && chown ckpt-atk-a: "$T/a/e$i"
done
mkdir -m 0700 "$T/b/e1" && chown ckpt-atk-b: "$T/b/e1"
for i in 1 2 3 4; do
	as_user ckpt-atk-a "$CKPT_BUILD/ckptctl" restore "$T/a/e$i" >/dev/null 2>&1 &
	pids+=($!)
done
running_of() { "$CKPT_BUILD/ckptctl" ps --json | grep -c "\"state\":\"running\",\"pid\":[0-9]*,\"uid\":$1,"; }
wait_for 20 "four jobs of A to run" eval '(($(running_of "$AUID") == 4))'
user_ckptctl ckpt-atk-a restore "$T/a/e5" && fail "A's 5th job was accepted"
grep -q "already have 4 jobs running" "$ERR" || fail "unclear refusal: $(cat "$ERR")"
log "A's 5th job: $(head -n 1 "$ERR")"
as_user ckpt-atk-b "$CKPT_BUILD/ckptctl" restore "$T/b/e1" >/dev/null 2>&1 &
pids+=($!)
wait_for 20 "B's job to run" eval '(($(running_of "$BUID") == 1))'
log "B got a slot while A holds 4"
touch "$T/go5"
for p in "${pids[@]}"; do wait "$p"; done
assert_ckptd_alive
pass
