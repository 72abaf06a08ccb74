#!/bin/bash
# SPDX-License-Identifier: MIT
# FD_CLOEXEC comes back on every fd as it was: two fds of each kind the
# restorer makes with a kind's own open (which makes an object right at its
# number with the flag its fds have: restorer/fds.c), one close-on-exec and
# one not, and of the kinds made together (pipe, unix sockets, memfd); one
# object held at the same number by two processes with different flags
# (python3, tests/workloads/cloexec.py). Every fd's fdinfo flags (the
# O_CLOEXEC bit is FD_CLOEXEC) are compared before and after, and each
# process sees its own bits unchanged.
. "$(dirname "$0")/lib.sh"

# fd_flags ROOT: "pid fd flags" of every fd of the tree (flags from fdinfo)
fd_flags()
{
	local p fd
	for p in $(tree_pids "$1"); do
		for fd in /proc/"$p"/fd/*; do
			fd=${fd##*/}
			echo "$p $fd $(awk '$1 == "flags:" { print $2 }' "/proc/$p/fdinfo/$fd" 2>/dev/null)"
		done
	done | sort -n -k1,1 -k2,2
}

D=$T/d LOG=$T/cloexec.log
mkdir -p "$D"
diag_add "$LOG"
start_workload CX "$T/cx.ready" -- "$PYTHON" "$WLSRC/cloexec.py" "$D" "$LOG" "$T/cx.ready"
wait_grep "$LOG" "^child fds 2 " 10
wait_grep "$LOG" "^parent fds 2 " 10
tree_snapshot "$CX" >"$T/tree.before"
fd_flags "$CX" >"$T/flags.before"
for who in parent child; do
	grep "^$who fds " "$LOG" | tail -n 1 | awk '{ print $4 }' >"$T/$who.bits"
done
# both kinds of fd are there, and the two processes differ where they should
grep -q 0 "$T/parent.bits" && grep -q 1 "$T/parent.bits" || fail "flags: $(cat "$T/parent.bits")"
cmp -s "$T/parent.bits" "$T/child.bits" && fail "the child's flags are the parent's"
ckpt_dump "$CX" "$T/img"
assert_tree_gone "$CX"
lines=$(line_count "$LOG")
ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$CX"
fd_flags "$CX" >"$T/flags.after"
diff -u "$T/flags.before" "$T/flags.after" || fail "fd flags differ after the restore"
wait_lines "$LOG" $((lines + 4)) 10
for who in parent child; do
	bits=$(tail -n +$((lines + 1)) "$LOG" | grep "^$who fds " | tail -n 1 | awk '{ print $4 }')
	[[ $bits == "$(cat "$T/$who.bits")" ]] || fail "$who: FD_CLOEXEC bits $bits, were $(cat "$T/$who.bits")"
done
log "$(wc -l <"$T/flags.after") fds: the same flags (FD_CLOEXEC: parent $(cat "$T/parent.bits"), child $(cat "$T/child.bits"))"
pass
