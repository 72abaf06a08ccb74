#!/bin/bash
# SPDX-License-Identifier: MIT
# Files mapped privately or read-only from a tmpfs are saved by
# --save-tmpfs-files (always on for `ckptctl preserve`): a program run from
# a tmpfs (tests/workloads/tmpfsmap.c, copied into a fresh tmpfs of the
# test's own, its cwd there too) that maps a /dev/shm file MAP_PRIVATE (two
# pages written) and MAP_SHARED read-only, and keeps it open read-only.
# Each file is one object of files.img (the exe link, every mapping and the
# fd name it). Dumped with `ckptctl dump --save-tmpfs-files`:
#   - restored over the files still there (the same: used as they are);
#   - restored after the files (and the cwd) are removed: made again with
#     their content, mode, owner and mtime; the cwd made again replaced by
#     a symlink before its mode is set is refused, its target untouched;
#   - a data file there with other content is refused, naming it;
#   - (another program) a tmpfs file mapped MAP_SHARED both writable and
#     from a read-only fd is refused at dump, the program left running.
# Then through ckptd, with a second copy run by an unprivileged user:
# both registered with `ckptctl preserve` (refused before this was
# supported), `--dump-all`, the tmpfs unmounted and mounted fresh and the
# /dev/shm files removed, `--restore-all` (the user's as the user).
# Each time the program carries on with its state (its own checks of every
# byte: written pages its own, the others the file's; a counter in a
# written page, no gap in its iterations), /proc/PID/exe and the
# file-backed lines of /proc/PID/maps are as before, the private area has
# as many anonymous pages as before (the others still read the file), and
# the program can exec its own executable again (no ETXTBSY, the file is
# there).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

ckptd_user_add UUID ckpt-e2e-tmpfsmap
chmod 0711 "$T"
TMPFS=$T/tmpfs
mkdir -p "$TMPFS"
mount -t tmpfs -o size=16m,mode=1777 ckpt-e2e-tmpfsmap "$TMPFS" || fail "cannot mount a tmpfs on $TMPFS"
SHM=/dev/shm
[[ $(stat -f -c %T "$SHM" 2>/dev/null) == tmpfs ]] || SHM=$TMPFS
trap 'rc=$?; umount -l "$TMPFS" 2>/dev/null; rm -f "$SHM/${T##*/}".*.data; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cleanup' EXIT
[[ $(stat -f -c %T "$TMPFS") == tmpfs ]] || fail "$TMPFS is not a tmpfs"

# job NAME: the job the helpers look at. Its executable and cwd are in
# $TMPFS/NAME, its data file directly in /dev/shm (a reboot keeps /dev/shm,
# not its subdirectories), its log and records in $T/NAME.
job()
{
	J=$1
	EXE=$TMPFS/$J/tmpfsmap
	DATA=$SHM/${T##*/}.$J.data
	LOG=$T/$J/map.log
}

# file-backed areas: address, protection, offset, path (not the inode)
maps_of() { awk '$6 ~ /^\// { print $1, $2, $3, $6 }' /proc/"$1"/maps; }
# VmFlags of the areas of the two files (a read-only shared one has no "mw")
flags_of() { awk -v a="$EXE" -v b="$DATA" '/^[0-9a-f]+-[0-9a-f]+ / { cur = ($6 == a || $6 == b) ? $1 " " $2 " " $6 : "" } cur != "" && /^VmFlags:/ { print cur ":" substr($0, 9) }' /proc/"$1"/smaps; }
# anonymous kB (copies of written pages) of the private mapping of the data file
anon_kb() { awk -v f="$DATA" '/^[0-9a-f]+-[0-9a-f]+ / { cur = ($6 == f && $2 == "rw-p") } cur && /^Anonymous:/ { print $2 }' /proc/"$1"/smaps; }
# no gap in the iterations, no FAIL
check_log()
{
	grep -q FAIL "$LOG" && fail "job $J found a difference: $(grep FAIL "$LOG" | head -n 3)"
	awk '$1 == "iter" { if (prev != "" && $2 != prev + 1) { print "iteration " $2 " after " prev; exit 1 } prev = $2 }' "$LOG" ||
		fail "job $J: its iterations have a gap"
}
file_stat() { stat -c '%a %u %g %Y %s' "$1"; }

# start_job NAME USER VAR: tmpfsmap run by USER from $TMPFS/NAME (its cwd);
# what it shows is recorded in $T/NAME.
start_job()
{
	local name=$1 user=$2 var=$3 pid
	local -a as=()
	job "$name"
	mkdir -m 0750 "$TMPFS/$name" "$T/$name"
	install -m 0755 "$WL/tmpfsmap" "$EXE"
	chown -R "$user:" "$TMPFS/$name" "$T/$name"
	diag_add "$LOG"
	[[ $user == root ]] || as=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups --inh-caps=-all --)
	# its stdout and stderr: files its owner can open again at restore
	install -o "$user" -m 0644 /dev/null "$T/$var.stdout"
	install -o "$user" -m 0644 /dev/null "$T/$var.stderr"
	cd "$TMPFS/$name" || fail "cd $TMPFS/$name"
	start_workload "$var" "$T/$name/ready" -- "${as[@]}" "$EXE" "$DATA" "$LOG" "$T/$name/ready"
	cd "$T" || fail "cd $T"
	pid=${!var}
	wait_lines "$LOG" 5
	check_log
	[[ $(readlink /proc/"$pid"/exe) == "$EXE" ]] || fail "job $J: its exe is $(readlink /proc/"$pid"/exe)"
	maps_of "$pid" >"$T/$J.maps.before"
	grep -q " r-xp .* $EXE\$" "$T/$J.maps.before" || fail "job $J: its text is not mapped from $EXE: $(cat "$T/$J.maps.before")"
	(($(grep -c " $DATA\$" "$T/$J.maps.before") == 2)) || fail "job $J: $DATA is not mapped twice: $(cat "$T/$J.maps.before")"
	flags_of "$pid" >"$T/$J.flags.before"
	grep -q " r--s $DATA:" "$T/$J.flags.before" || fail "job $J: no read-only shared area of $DATA: $(cat "$T/$J.flags.before")"
	grep " r--s $DATA:" "$T/$J.flags.before" | grep -qw mw && fail "job $J: the read-only shared area of $DATA may be written"
	[[ $(anon_kb "$pid") == 8 ]] || fail "job $J: the private mapping of $DATA has $(anon_kb "$pid") kB of private copies, expected 8"
	cp "$EXE" "$T/$J.exe.orig"
	cp "$DATA" "$T/$J.data.orig"
	file_stat "$EXE" >"$T/$J.exe.stat"
	file_stat "$DATA" >"$T/$J.data.stat"
	[[ $(stat -c %U "$DATA") == "$user" ]] || fail "job $J: $DATA is $(stat -c %U "$DATA")'s"
}

# check_files WHAT: the job's files are back with content, mode, owner, mtime.
check_files()
{
	local f
	for f in "$EXE:$T/$J.exe" "$DATA:$T/$J.data"; do
		cmp -s "${f%%:*}" "${f#*:}.orig" || fail "$1: ${f%%:*} is not back with its content"
		[[ $(file_stat "${f%%:*}") == "$(<"${f#*:}.stat")" ]] ||
			fail "$1: ${f%%:*} is back as $(file_stat "${f%%:*}") (mode uid gid mtime size), dumped $(<"${f#*:}.stat")"
	done
	log "$1: files made again: $EXE ($(<"$T/$J.exe.stat")), $DATA ($(<"$T/$J.data.stat"))"
}

# check_job PID LINES WHAT: the restored job carries on, as it was.
check_job()
{
	local pid=$1 n0=$2 what=$3 execs probes
	assert_running "$pid"
	wait_lines "$LOG" $((n0 + 10)) 20
	check_log
	[[ $(readlink /proc/"$pid"/exe) == "$EXE" ]] || fail "$what: /proc/$pid/exe is $(readlink /proc/"$pid"/exe)"
	maps_of "$pid" >"$T/$J.maps.after"
	diff -u "$T/$J.maps.before" "$T/$J.maps.after" || fail "$what: the file-backed areas differ"
	flags_of "$pid" >"$T/$J.flags.after"
	diff -u "$T/$J.flags.before" "$T/$J.flags.after" || fail "$what: the VmFlags of the areas of $EXE or $DATA differ"
	[[ $(anon_kb "$pid") == 8 ]] ||
		fail "$what: the private mapping of $DATA has $(anon_kb "$pid") kB of anonymous pages, 8 before"
	[[ $(readlink /proc/"$pid"/fd/10) == "$DATA" ]] || fail "$what: fd 10 is $(readlink /proc/"$pid"/fd/10)"
	execs=$(grep -c '^exec ok$' "$LOG")
	probes=$(grep -c "^probe ok $EXE\$" "$LOG")
	touch "$LOG.exec"
	wait_for 10 "$what: the job to exec itself" eval "(( \$(grep -c '^exec ok\$' '$LOG') > $execs ))"
	(($(grep -c "^probe ok $EXE\$" "$LOG") > probes)) || fail "$what: no probe ran from $EXE"
	check_log
	log "$what: job $J carries on ($(grep -c '^iter' "$LOG") iterations), exe $EXE, same maps and VmFlags, 8 kB private copies, exec of itself works"
}

start_job root root M

# --- ckptctl dump --save-tmpfs-files, the files still there ----------------------------
ckpt_dump "$M" "$T/img1" --save-tmpfs-files
assert_tree_gone "$M"
ckptctl_run show "$T/img1" files.img || fail "ckptctl show files.img failed: $(cat "$ERR")"
"$PYTHON" - "$OUT" "$EXE" "$DATA" <<'PY' || fail "files.img: $(cat "$OUT")"
import json, sys
out, exe, data = sys.argv[1:]
recs = []
def walk(o):
    if isinstance(o, dict):
        if "path" in o and "type" in o:
            recs.append(o)
        for v in o.values():
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(open(out)))
for path in (exe, data):
    mine = [r for r in recs if r.get("path") == path]
    objs = [r for r in mine if r.get("type") == "FILE_SHMEM"]
    if len(objs) != 1 or objs[0].get("shmem", {}).get("kind") != "SHMEM_FILE" or not objs[0]["shmem"].get("tmpfs"):
        sys.exit(f"{path}: {len(objs)} tmpfs file objects: {mine}")
    others = [r for r in mine if r.get("type") != "FILE_SHMEM" and "shmem_id" not in r]
    if others:
        sys.exit(f"{path}: entries outside its object: {others}")
PY
log "files.img: one tmpfs file object each for $EXE and $DATA"
lines=$(line_count "$LOG")
ckpt_restore "$T/img1"
[[ $RESTORED_PID == "$M" ]] || fail "restored pid $RESTORED_PID, dumped $M"
check_job "$M" "$lines" "restore over the files still there"

# --- the same after the files and the cwd are gone -------------------------------------
ckpt_dump "$M" "$T/img2" --save-tmpfs-files
assert_tree_gone "$M"
cmp -s "$DATA" "$T/$J.data.orig" || fail "$DATA changed: the private writes reached the file"
rm -rf "$TMPFS/$J"
rm -f "$DATA"
# the cwd made again replaced by a symlink to a FIFO before its owner and
# mode are set (CKPT_PAUSE at cwd-remade; a tmpfs such as /tmp is shared):
# refused, the FIFO left as it was (chmod by path followed the symlink)
echo "$M" >"$T/tree.m"
paused_restore cwd-remade "$T/img2" --json
[[ -d $TMPFS/$J ]] || fail "paused at cwd-remade, but $TMPFS/$J was not made"
swap_made symlink "$TMPFS/$J" "$T/other"
swap_refused "a symlink at the cwd made again" "$TMPFS/$J" "its cwd $TMPFS/$J made again was replaced" "$T/tree.m"
[[ ! -e $DATA ]] || fail "the failed restore left $DATA behind"
lines=$(line_count "$LOG")
ckpt_restore "$T/img2"
check_files "restore after the files were removed"
[[ $(stat -c %a "$TMPFS/$J") == 750 ]] || fail "the cwd $TMPFS/$J came back with mode $(stat -c %a "$TMPFS/$J")"
check_job "$M" "$lines" "restore after the files were removed"

# --- a data file there with other content: refused ---------------------------------------
ckpt_dump "$M" "$T/img3" --save-tmpfs-files
assert_tree_gone "$M"
echo "$M" >"$T/tree.m"
printf 'other' | dd of="$DATA" bs=1 seek=8192 conv=notrunc status=none
if ckptctl_run restore "$T/img3" --json; then
	fail "a restore over a changed $DATA succeeded"
fi
grep -q "saved tmpfs file $DATA changed since the dump" "$ERR" || fail "the refusal does not name $DATA: $(cat "$ERR")"
log "changed file refused: $(grep -o "saved tmpfs file $DATA[^\"]*" "$ERR" | head -n 1 | cut -c1-200)"
assert_restore_left_nothing "$T/tree.m"
# a FIFO there instead (read-only, unlike a file mapped shared writable:
# the open waited for a writer): refused at once
rm "$DATA" && mkfifo "$DATA"
CKPTCTL_TIMEOUT=20 ckptctl_run restore "$T/img3" --json
((RC == 1)) || fail "a FIFO at $DATA: restore exited $RC (124: it waited): $(cat "$ERR")"
grep -q "saved tmpfs file $DATA is no longer a regular file" "$ERR" ||
	fail "the FIFO's refusal is unclear: $(cat "$ERR")"
log "FIFO refused: $(grep -o "saved tmpfs file $DATA[^\"]*" "$ERR" | head -n 1 | cut -c1-200)"
assert_restore_left_nothing "$T/tree.m"
rm "$DATA"
# the same content again (a new mtime: the identity check compares content then)
cp "$T/$J.data.orig" "$DATA"
file_stat "$DATA" >"$T/$J.data.stat"
lines=$(line_count "$LOG")
ckpt_restore "$T/img3"
check_job "$M" "$lines" "restore once the file is as dumped again"

# --- one tmpfs file mapped shared both writable and from a read-only fd: refused --------
# (the restore maps every area of a file object from one fd)
start_workload MIX "$T/mix.ready" -- "$PYTHON" -c '
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 4096)
rw = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
ro = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 4096, mmap.MAP_SHARED, mmap.PROT_READ)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(1000)
' "$TMPFS/mix.bin" "$T/mix.ready"
expect_fail "a tmpfs file mapped shared writable and read-only" \
	"$TMPFS/mix.bin is mapped MAP_SHARED both from a read-write fd and from a read-only one" \
	dump "$MIX" -D "$T/imgmix" --save-tmpfs-files
assert_running "$MIX"
[[ -e $T/imgmix ]] && fail "a refused dump left $T/imgmix"
kill_tree "$MIX"
rm -f "$TMPFS/mix.bin"

# --- ckptctl preserve: the simulated reboot, a root's job and a user's ---------------
start_job user ckpt-e2e-tmpfsmap U
start_ckptd --state-dir "$T/state"
job root
ckptctl_run preserve "$M" --name tmpfsmap || { cat "$ERR"; fail "registration of pid $M failed"; }
ID=$(<"$OUT")
[[ $ID =~ ^[0-9]+$ ]] || fail "preserve printed '$ID', not an id"
assert_running "$M"
user_ckptctl ckpt-e2e-tmpfsmap preserve "$U" --name utmpfsmap || { cat "$ERR"; fail "the user's registration of pid $U failed"; }
UID_=$(<"$OUT")
[[ $UID_ =~ ^[0-9]+$ ]] || fail "preserve printed '$UID_', not an id"
assert_running "$U"
ckptctl_run preserve --dump-all --deadline 60 --json || { cat "$OUT" "$ERR"; fail "--dump-all failed"; }
for id in "$ID" "$UID_"; do
	grep -q "\"id\":$id,.*\"state\":\"saved\"" "$OUT" || { cat "$OUT"; fail "job $id not saved"; }
done
assert_tree_gone "$M"
assert_tree_gone "$U"
declare -A LINES
for j in root user; do
	job "$j"
	LINES[$j]=$(line_count "$LOG")
done
umount "$TMPFS" || fail "cannot unmount $TMPFS"
mount -t tmpfs -o size=16m,mode=1777 ckpt-e2e-tmpfsmap "$TMPFS" || fail "cannot mount a fresh tmpfs"
rm -f "$SHM/${T##*/}".*.data
ckptctl_run preserve --restore-all --json || { cat "$OUT" "$ERR"; fail "--restore-all failed"; }
for id in "$ID" "$UID_"; do
	grep -q "\"id\":$id,[^}]*\"last_result\":\"restored as pid" "$OUT" || { cat "$OUT"; fail "job $id not restored"; }
done
for j in root:$ID:$M user:$UID_:$U; do
	IFS=: read -r name id pid <<<"$j"
	newpid=$(grep -o "\"id\":$id,[^}]*" "$OUT" | sed -n 's/.*restored as pid \([0-9]*\).*/\1/p')
	TRACKED+=("$newpid")
	[[ $newpid == "$pid" ]] || fail "job $name restored as pid $newpid, dumped $pid"
	job "$name"
	check_files "job $name across a simulated reboot"
	[[ $(stat -c %a "$TMPFS/$J") == 750 ]] || fail "the cwd $TMPFS/$J came back with mode $(stat -c %a "$TMPFS/$J")"
	check_job "$pid" "${LINES[$name]}" "ckptctl preserve across a simulated reboot"
done
[[ $(awk '/^Uid:/ { print $2 }' /proc/"$U"/status) == "$UUID" ]] || fail "the user's job runs as $(grep Uid: /proc/"$U"/status)"
[[ $(awk '/^CapEff:/ { print $2 }' /proc/"$U"/status) == 0000000000000000 ]] || fail "the user's job has capabilities: $(grep CapEff: /proc/"$U"/status)"
[[ $(stat -c %U "$TMPFS/user/tmpfsmap") == ckpt-e2e-tmpfsmap ]] || fail "the user's executable is $(stat -c %U "$TMPFS/user/tmpfsmap")'s"
assert_ckptd_alive
pass
