#!/bin/bash
# SPDX-License-Identifier: MIT
# A dump must not be seen by the program it dumps, and a file's access time
# is the program's to see. python3 (tests/workloads/atimes.py) maps a file
# privately and a memfd shared, whose access times were set two days back
# (relatime then updates them on any read). The dump reads the mapped
# file for its content sum (fd-kinds.md, "File identity") and the memfd
# for its pages: before the fix each of those reads gave the file and the
# memfd the time of the dump as access time, a --leave-running dump too.
# Now those reads do not touch access times (O_NOATIME); the restore
# neither (its mmap of the file).
. "$(dirname "$0")/lib.sh"

D=$T/d
mkdir -p "$D"
head -c 65536 /dev/urandom >"$D/data.bin"
LOG=$T/a.log
diag_add "$LOG"
start_workload P "$T/a.ready" -- "$PYTHON" "$WLSRC/atimes.py" "$D/data.bin" "$LOG" "$T/a.ready"
wait_grep "$LOG" '^ok 1 ' 10
M=$(awk '$1 == "memfd" { print $2 }' "$LOG")
[[ $M =~ ^[0-9]+$ ]] || fail "no memfd fd in the log: $(head -3 "$LOG")"
touch -a -d '2 days ago' "$D/data.bin" "/proc/$P/fd/$M"
# (a file changed in the last second is not read for its sum: touch -a
# sets the ctime)
wait_for 5 "data.bin's ctime to be 2 s old" ctime_settled "$D/data.bin"
file_at=$(stat -c %x "$D/data.bin")
memfd_at=$(stat -L -c %x "/proc/$P/fd/$M")
sums=$(awk '$1 == "ok" { s = $3 " " $4 } END { print s }' "$LOG")

# same_atime WHAT: neither access time changed
same_atime()
{
	local now
	now=$(stat -c %x "$D/data.bin")
	[[ $now == "$file_at" ]] || fail "$1 changed the mapped file's access time: $file_at -> $now"
	if [[ -n ${2:-} ]]; then
		now=$(stat -L -c %x "/proc/$P/fd/$M")
		[[ $now == "$memfd_at" ]] || fail "$1 changed the memfd's access time: $memfd_at -> $now"
	fi
}

ckpt_dump "$P" "$T/lr" --leave-running
same_atime "a --leave-running dump" memfd
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
same_atime "a dump"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
wait_grep_after "$LOG" "$lines" '^ok [0-9]+ '
tail -n +$((lines + 1)) "$LOG" | awk -v s="$sums" '$1 == "ok" && $3 " " $4 != s { bad = 1 } END { exit bad }' ||
	fail "the mappings' bytes changed: $sums -> $(tail -n 1 "$LOG")"
same_atime "the restore"
log "access times kept: $file_at (file), $memfd_at (memfd)"
kill_tree "$P"
pass
