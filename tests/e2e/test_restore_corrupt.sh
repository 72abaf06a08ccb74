#!/bin/bash
# SPDX-License-Identifier: MIT
# (i) Damaged images are refused before anything is created, with an error
# naming the file: one byte flipped in each image in turn, a truncated image,
# a missing image, a bad inventory header. Nothing is left running, the
# original images still restore.
. "$(dirname "$0")/lib.sh"

LOG=$T/memhog.log
diag_add "$LOG"
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 16 "$LOG" "$T/memhog.ready"
wait_lines "$LOG" 2
tree_snapshot "$MH" >"$T/tree.before"
ckpt_dump "$MH" "$T/img"
assert_tree_gone "$MH"
image_sums "$T/img" >"$T/sums.before"

# flip FILE OFFSET: invert one byte.
flip()
{
	"$PYTHON" - "$1" "$2" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xff]))
PY
}

# refused CASE FILE: restore of $T/bad must fail naming FILE, leave nothing.
refused()
{
	local what=$1 file=$2
	if ckptctl_run restore "$T/bad" --json; then
		fail "$what: restore of a damaged checkpoint succeeded"
	fi
	grep -q -- "$file" "$ERR" || fail "$what: error does not name $file: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	log "$what: $(head -c 160 "$ERR")"
}

fresh_copy() { rm -rf "$T/bad" && cp -a "$T/img" "$T/bad"; }

for path in "$T"/img/*.img; do
	f=$(basename "$path")
	[[ $f == inventory.img ]] && continue
	size=$(stat -c %s "$path")
	fresh_copy
	flip "$T/bad/$f" $((size > 64 ? size / 2 : size - 1))
	refused "byte flipped in $f" "$f"
done

fresh_copy
f=$(basename "$(ls "$T"/img/core-*.img | head -n 1)")
truncate -s -1 "$T/bad/$f"
refused "truncated $f" "$f"

fresh_copy
rm "$T/bad/$f"
refused "missing $f" "$f"

fresh_copy
flip "$T/bad/inventory.img" 0
refused "bad magic in inventory.img" inventory.img

image_sums "$T/img" | diff -u "$T/sums.before" - || fail "the original images changed"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$MH"
wait_lines "$LOG" $((lines + 3)) 15
last=$(check_memhog_log "$LOG") || fail "after restore: $last"
pass
