#!/bin/bash
# SPDX-License-Identifier: MIT
# Files that changed between dump and restore: the restore is refused before
# anything is created, naming the file, and leaves nothing behind; once the
# file is back the same images restore fine.
#   - an open file truncated below the saved position
#   - an open file deleted
#   - the executable modified in place (same size, other content)
#   - the executable grown by one byte
# An executable whose content is back to what was dumped (only its mtime
# differs) is accepted: identity is size + mtime, else the content checksum.
# Many fds of one file are checked once per file where one check answers
# for all (fd_kind.verify_same), never where it does not: a file cut below
# the position of its third fd only, and the second path of a device no
# longer a device, are refused in stage verify (the open would refuse them
# later, after more is made).
. "$(dirname "$0")/lib.sh"

# refuse WHAT NAME: restore must fail naming NAME and leave nothing behind.
refuse()
{
	if ckptctl_run restore "$T/img" --json; then
		fail "$1: restore succeeded"
	fi
	grep -q -- "$2" "$ERR" || fail "$1: error does not name $2: $(cat "$ERR")"
	grep -q 'stage verify' "$ERR" || fail "$1: not refused in stage verify: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	poll_for 3 no_reaper_strays || fail "$1: processes left behind: $(reaper_strays)"
	image_sums "$T/img" | diff -u "$T/sums.before" - || fail "$1: the images changed"
	log "$1: $(head -n 1 "$ERR" | cut -c1-200)"
}

# carries_on PID LOG WHAT: the images restore the same tree, and LOG grows
# with no FAIL line.
carries_on()
{
	local lines
	lines=$(line_count "$2")
	ckpt_restore "$T/img"
	assert_same_tree "$T/tree.before" "$1"
	wait_lines "$2" $((lines + 3))
	if grep -n FAIL "$2"; then fail "$3 failed after restore"; fi
}

# flip FILE OFFSET: invert one byte in place (same size, new mtime).
flip()
{
	"$PYTHON" - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xff]))
PY
}

# --- open data files ----------------------------------------------------------
D=$T/files
mkdir -p "$D"
diag_add "$D/log.txt"
start_workload F "$D/ready" --stdout "$D/stdout.txt" -- "$WL/files" "$D"
wait_lines "$D/log.txt" 5
tree_snapshot "$F" >"$T/tree.before"
ckpt_dump "$F" "$T/img"
assert_tree_gone "$F"
image_sums "$T/img" >"$T/sums.before"

cp -a "$D/out.txt" "$T/out.saved"
: >"$D/out.txt"
refuse "out.txt truncated" out.txt
cp -a "$T/out.saved" "$D/out.txt"

mv "$D/input.txt" "$T/input.saved"
refuse "input.txt deleted" input.txt
mv "$T/input.saved" "$D/input.txt"

carries_on "$F" "$D/log.txt" "the files workload"
kill_tree "$F"
untrack "$F"
assert_tree_gone "$F"

# --- the executable -----------------------------------------------------------
mkdir -p "$T/bin"
cp "$WL/memhog" "$T/bin/memhog"
LOG=$T/memhog.log
diag_add "$LOG"
start_workload MH "$T/memhog.ready" -- "$T/bin/memhog" 8 "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 2
tree_snapshot "$MH" >"$T/tree.before"
rm -rf "$T/img"
ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
image_sums "$T/img" >"$T/sums.before"

size=$(stat -c %s "$T/bin/memhog")
flip "$T/bin/memhog" $((size / 2))
refuse "executable modified (same size)" memhog
flip "$T/bin/memhog" $((size / 2))

echo >>"$T/bin/memhog"
refuse "executable grown" memhog
truncate -s "$size" "$T/bin/memhog"
cmp "$WL/memhog" "$T/bin/memhog" || fail "could not put the executable back"

lines=$(line_count "$LOG")
ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$MH"
wait_lines "$LOG" $((lines + 3))
last=$(check_memhog_log "$LOG") || fail "after restore: $last"
log "executable back to its dumped content (new mtime): restored, memory verified"
kill_tree "$MH"
untrack "$MH"
assert_tree_gone "$MH"

# --- many fds of one file -----------------------------------------------------
D=$T/same LOG=$T/same.log
mkdir -p "$D"
head -c 1000 /dev/zero >"$D/data.bin"
mknod "$D/null2" c 1 3
chmod 666 "$D/null2"
diag_add "$LOG"
start_workload SF "$T/same.ready" -- "$PYTHON" "$WLSRC/samefile.py" "$D" "$LOG" "$T/same.ready"
wait_lines "$LOG" 2
tree_snapshot "$SF" >"$T/tree.before"
rm -rf "$T/img"
ckpt_dump "$SF" "$T/img"
assert_tree_gone "$SF"
image_sums "$T/img" >"$T/sums.before"

# fds at 10 and 500 fit in 600 bytes, the one at 900 does not
truncate -s 600 "$D/data.bin"
refuse "data.bin cut below its third fd's position" "data.bin is now 600 bytes, shorter than the saved position 900"
truncate -s 1000 "$D/data.bin"

rm "$D/null2"
: >"$D/null2"
refuse "the second node of /dev/null now a regular file" "null2 is no longer a character device"
rm "$D/null2"
mknod "$D/null2" c 1 3
chmod 666 "$D/null2"

carries_on "$SF" "$LOG" samefile.py
log "many fds of one file: refused where one changed, restored once back"
pass
