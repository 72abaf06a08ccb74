#!/bin/bash
# SPDX-License-Identifier: MIT
# Open files survive dump and restore: positions of read, write and shared
# (dup'ed) descriptions (told by the kernel reader and by kcmp alike), O_APPEND (another writer appends while the program
# is dumped: nothing is overwritten), FD_CLOEXEC, a directory fd, /dev/null,
# /dev/zero, /dev/urandom and stdout redirected to a file. Every output file
# must be exactly the lines the program wrote: no overwrite, no gap.
. "$(dirname "$0")/lib.sh"

fd_table() { local f; for f in /proc/"$1"/fd/*; do echo "${f##*/} $(readlink "$f")"; done | sort -n; }

D=$T/files
mkdir -p "$D"
diag_add "$D/log.txt" "$D/stderr.txt"
start_workload F "$D/ready" --stdout "$D/stdout.txt" -- "$WL/files" "$D"
wait_lines "$D/log.txt" 10
grep -n FAIL "$D/log.txt" && fail "files workload failed before the dump"
fd_table "$F" >"$T/fds.before"
tree_snapshot "$F" >"$T/tree.before"
# dup'ed and inherited descriptions found shared the same way by the
# kernel reader's addresses and by kcmp (CKPT_FAULT=kread-files)
ckpt_dump "$F" "$T/lr.img" --leave-running
CKPT_FAULT=kread-files ckpt_dump "$F" "$T/lr-kcmp.img" --leave-running
same_fd_images "$F" "$T/lr.img" "$T/lr-kcmp.img"

ckpt_dump "$F" "$T/img"
assert_tree_gone "$F"
echo "external 1" >>"$D/append.txt"
echo "external 2" >>"$D/append.txt"
iters=$(line_count "$D/log.txt")

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$F" ]] || fail "restored root pid $RESTORED_PID, dumped $F"
assert_same_tree "$T/tree.before" "$F"
wait_lines "$D/log.txt" $((iters + 20)) 15
assert_running "$F"
fd_table "$F" >"$T/fds.after"
kill_tree "$F"
untrack "$F"

grep -n FAIL "$D/log.txt" && fail "the files workload found a difference after restore"
awk '$1 != "iter" || $2 != NR - 1 || $3 != "ok" { print "log.txt:" NR ": " $0; bad = 1; exit } END { exit bad }' \
	"$D/log.txt" || fail "log.txt is not continuous"
n=$(line_count "$D/log.txt")

# seq_ok PREFIX: stdin must be exactly "PREFIX 000000", "PREFIX 000001"...
# Prints the count.
seq_ok() { awk -v p="$1" '$0 != sprintf("%s %06d", p, NR - 1) { print "line " NR ": " $0 > "/dev/stderr"; bad = 1; exit } END { if (!bad) print NR; exit bad }'; }
# The program logs an iteration after its writes, so a file may hold one
# more line than the log (it was frozen or killed in between).
near() { (($1 == n || $1 == n + 1)); }

w=$(seq_ok w <"$D/out.txt") || fail "out.txt is not exactly w 0, 1, 2... (overwrite or gap)"
near "$w" || fail "out.txt has $w lines for $n iterations"
s=$(seq_ok s <"$D/stdout.txt") || fail "stdout.txt is not exactly s 0, 1, 2..."
near "$s" || fail "stdout.txt has $s lines for $n iterations"
ext=$(grep -n '^external 1$' "$D/append.txt" | cut -d: -f1)
[[ -n $ext ]] || fail "append.txt: the lines appended while the program was dumped are gone"
m=$((ext - 1))
((m == iters || m == iters + 1)) || fail "append.txt: $m lines before the external ones, the log had $iters"
sed -n "$((ext + 1))p" "$D/append.txt" | grep -qx 'external 2' || fail "append.txt: external 2 overwritten"
{ head -n "$m" "$D/append.txt"; tail -n +$((ext + 2)) "$D/append.txt"; } >"$T/append.own"
a=$(seq_ok a <"$T/append.own") || fail "append.txt: the program's own lines are not continuous around the external ones"
near "$a" || fail "append.txt has $a lines of the program for $n iterations"
log "$n iterations; out $w, stdout $s, append $a lines (+2 external after line $m)"

# Same fd numbers pointing at the same targets.
diff -u "$T/fds.before" "$T/fds.after" || fail "the fd table changed"
log "fds: $(cut -d' ' -f1 "$T/fds.after" | tr '\n' ' ')"
pass
