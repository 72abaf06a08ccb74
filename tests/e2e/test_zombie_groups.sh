#!/bin/bash
# SPDX-License-Identifier: MIT
# Zombies in a process group or session of their own (a shell's finished
# job) come back as zombies in the same group and session, with the same
# pids, and their parent (python3) reaps them with their exit statuses
# after the restore. A zombie leading a group with a live member (a
# pipeline whose first process exited) comes back leading it: the member
# is in its group, and after the zombie is reaped killpg of that group
# still reaches the member. A group whose leader was reaped before the dump
# (no process has its pid) comes back with its member in it: killpg of it
# reaches the member.
. "$(dirname "$0")/lib.sh"

LOG=$T/zg.log
diag_add "$LOG"
start_workload ZG "$T/zg.ready" -- "$PYTHON" "$WLSRC/zgroups.py" "$LOG" "$T/zg.ready" "$T/go"
wait_lines "$LOG" 6 10
head -n 6 "$LOG" >"$T/before"
grep -q "state Z" "$T/before" || fail "no zombies: $(cat "$T/before")"
ckpt_dump "$ZG" "$T/img"
assert_tree_gone "$ZG"
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$ZG" ]] || fail "restored root pid $RESTORED_PID, dumped $ZG"
touch "$T/go"
wait_grep "$LOG" '^lost member reaped' 10
sed -n 7,12p "$LOG" >"$T/after"
diff -u "$T/before" "$T/after" || fail "the zombies' groups or sessions changed"
grep -qx 'member reaped -15' "$LOG" || fail "killpg of the zombie-led group did not reach its member: $(grep 'member reaped' "$LOG")"
grep -qx 'lost member reaped -15' "$LOG" || fail "killpg of the group whose leader was gone did not reach its member: $(grep 'lost member reaped' "$LOG")"
for code in 3 4 5 6; do
	grep -q "^reaped [0-9]* $code\$" "$LOG" || fail "no child reaped with status $code: $(grep reaped "$LOG")"
done
log "$(tr '\n' ';' <"$T/after")"
kill_tree "$ZG"

# ---- a group shared with processes outside the tree: refused, then not ------------
# X (outside) made L (a group of its own) and M (in L's group); P, the tree
# dumped, has a child C in L's group. While L lives, or M, the group is out
# of reach; once both are gone the group has C alone and is made again.
start_workload X "$T/x.ready" --stdout "$T/x.out" -- "$PYTHON" -c '
import os, signal, sys, time
def child(pgid, then):
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, pgid)
        then()
        while True:
            time.sleep(1)
    os.setpgid(pid, pgid if pgid else pid)
    return pid
def tree():
    c = child(L, lambda: None)
    while True:
        os.waitpid(c, 0)
L = child(0, lambda: None)
M = child(L, lambda: None)
P = os.fork()
if P == 0:
    tree()
# its children are reaped by the kernel (P once the dump kills it)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
print(L, M, P, flush=True)
while open(f"/proc/{P}/task/{P}/children").read().split() == []:
    time.sleep(0.01)
open(sys.argv[1] + ".tmp", "w").write(f"{os.getpid()}\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
for who, pid in (("L", L), ("M", M)):
    while not os.path.exists(sys.argv[2] + who):
        time.sleep(0.01)
    os.kill(pid, 9)
    while os.path.exists(f"/proc/{pid}"):
        time.sleep(0.01)
    print("reaped", who, flush=True)
while True:
    time.sleep(1)' "$T/x.ready" "$T/kill"
read -r L M P <"$T/x.out"
read -r C _ <"/proc/$P/task/$P/children"
[[ $(awk '{print $5}' "/proc/$C/stat") == "$L" ]] || fail "C $C is not in group $L"
ckptctl_run dump "$P" -D "$T/shared.img" && fail "a group led by a process outside the tree was dumped"
[[ $(cat "$ERR") == *"pid $C: its process group $L is led by pid $L, outside the tree"* ]] || fail "refusal: $(cat "$ERR")"
assert_running "$P"
touch "$T/killL"
wait_grep "$T/x.out" '^reaped L'
ckptctl_run dump "$P" -D "$T/shared.img" && fail "a group with a member outside the tree was dumped"
[[ $(cat "$ERR") == *"pid $C: its process group $L (whose leader has exited) has pid $M "*"outside the tree"* ]] ||
	fail "refusal: $(cat "$ERR")"
assert_running "$P"
touch "$T/killM"
wait_grep "$T/x.out" '^reaped M'
ckpt_dump "$P" "$T/lost.img"
assert_gone "$P" "$C"
ckpt_restore "$T/lost.img"
[[ $RESTORED_PID == "$P" ]] || fail "restored pid $RESTORED_PID, dumped $P"
[[ $(awk '{print $5}' "/proc/$C/stat") == "$L" ]] || fail "after restore C $C is not in group $L: $(cat "/proc/$C/stat")"
[[ -e /proc/$L ]] && fail "pid $L (the group's helper) is still there after restore"
kill -TERM -- "-$L"
assert_gone "$C"
log "group $L whose leader was gone: refused while shared outside, restored once in the tree alone"
pass
