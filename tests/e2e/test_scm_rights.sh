#!/bin/bash
# SPDX-License-Identifier: MIT
# File descriptors in flight (SCM_RIGHTS) and credentials (SCM_CREDENTIALS)
# in unix socket queues (lib/kinds/unix.c, dump/dump_fds.c, restorer/fds.c).
# tests/workloads/scmrights.c queues, without receiving them: a pipe's read
# end, a regular file at offset 5 and a socketpair end (with data of its
# own queued) on a stream socketpair, in two runs of bytes; a regular file
# also kept open by the program, and an eventfd with an empty message, on a
# seqpacket socketpair; a message without credentials on a datagram pair
# whose receiver has SO_PASSCRED since; credentials of the program and of an
# exited child run as another uid on a stream pair with SO_PASSCRED.
#  - failed dumps (one right after the queues were read) and --leave-running
#    consume nothing: the running program then receives everything intact;
#    what shares a description is the same told by the kernel reader's
#    addresses or by kcmp;
#  - the images hold the messages with their fds (files.img entries) and
#    credentials;
#  - after restore the program receives the same: the fds with the same
#    bytes, each fd works (pipe to its kept other end, the file's offset and
#    mode, the socketpair end with its own queue, the eventfd's count), the
#    description also kept open is one description, credentials as sent.
. "$(dirname "$0")/lib.sh"

[[ -x $WL/scmrights ]] || fail "$WL/scmrights not found: build first"

no_fail() { ! grep -q FAIL "$1" || fail "the workload failed: $(grep FAIL "$1")"; }
all_ok()
{
	wait_grep "$1" 'ALL OK|FAIL' 20
	no_fail "$1"
	for what in "stream boundaries" pipe "regular file" socketpair "shared description" \
		seqpacket "no credentials" "memfd and deleted file" credentials; do
		grep -qx "ok $what" "$1" || fail "no 'ok $what' in $1: $(cat "$1")"
	done
}

# ---- failed dumps and --leave-running: nothing consumed --------------------------
LOG=$T/lr.log
D=$T/lr
mkdir -p "$D"
diag_add "$LOG"
start_workload P "$T/lr.ready" -- "$WL/scmrights" "$D" "$LOG" "$T/lr.ready"
for step in unix-queue dump-fds dump-write; do
	if CKPT_FAULT=$step ckptctl_run dump "$P" -D "$T/$step.img"; then
		fail "$step: dump succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: error does not name the step: $(cat "$ERR")"
	assert_tree_running "$P"
done
ckpt_dump "$P" "$T/lr.img" --leave-running
assert_tree_running "$P"
# the same descriptions found shared whether told by their addresses (the
# kernel reader) or by kcmp (CKPT_FAULT=kread-files): the same images
CKPT_FAULT=kread-files ckpt_dump "$P" "$T/lr-kcmp.img" --leave-running
assert_tree_running "$P"
same_fd_images "$P" "$T/lr.img" "$T/lr-kcmp.img"
# the dump holds no copy of anything any more: the pipe's write end count is the program's
touch "$D/go"
all_ok "$LOG"
log "failed dumps and --leave-running: the queues are intact, every fd works"
kill_tree "$P"
untrack "$P"

# ---- dump, images, restore --------------------------------------------------------
LOG=$T/scm.log
D=$T/scm
mkdir -p "$D"
diag_add "$LOG"
start_workload P "$T/scm.ready" -- "$WL/scmrights" "$D" "$LOG" "$T/scm.ready"
child=$(awk '/^queued child/ { print $3 }' "$LOG")
tree_snapshot "$P" >"$T/before"
ckpt_dump "$P" "$T/scm.img"
assert_tree_gone "$P"
"$CKPTCTL" show "$T/scm.img" files.img >"$T/files.json" || fail "ckptctl show files.img failed"
"$PYTHON" - "$T/files.json" "$child" >"$T/report" <<'PY' || fail "images: $(cat "$T/report")"
import json, sys
doc = json.load(open(sys.argv[1]))
docs = doc if isinstance(doc, list) else [doc]
entries = [e for d in docs for e in d.get("entries", [])]
byid = {int(e["id"]): e for e in entries}
msgs = {}
for e in entries:
    for m in (e.get("unix_sk") or {}).get("msgs", []):
        data = bytes.fromhex(m.get("data", "")).decode()
        msgs[data] = m
def kinds(data):
    return sorted(byid[int(i)]["type"] for i in msgs[data].get("fds", []))
print(sorted(msgs))
# each send with fds is saved apart from the plain bytes before it
assert not msgs["s-plain-1"].get("fds") and not msgs["s-plain-3"].get("fds"), sorted(msgs)
assert kinds("s-fds-2") == ["FILE_PIPE", "FILE_REG"], kinds("s-fds-2")
assert kinds("s-fds-4") == ["FILE_UNIX_SK"], kinds("s-fds-4")
assert kinds("q-1") == ["FILE_REG"] and kinds("") == ["FILE_EVENTFD"]
assert not msgs["q-2"].get("fds")
assert "cred_pid" not in msgs["d-1"], msgs["d-1"]
c = msgs["cred-2"]
assert int(c["cred_pid"]) == int(sys.argv[2]) and int(c["cred_uid"]) == 4321 and int(c["cred_gid"]) == 1234, c
# the in-flight socketpair end has its own queue
sp = byid[int(msgs["s-fds-4"]["fds"][0])]["unix_sk"]
assert [bytes.fromhex(m["data"]).decode() for m in sp.get("msgs", [])] == ["hello-sp"], sp
print("ok")
PY
log "images: $(tail -n 1 "$T/report")"

image_sums "$T/scm.img" >"$T/sums"
for step in unix-open pipe-open file-open; do
	if CKPT_FAULT=$step ckptctl_run restore "$T/scm.img" --json; then
		fail "$step: restore succeeded despite CKPT_FAULT"
	fi
	grep -q -- "$step" "$ERR" || fail "$step: restore error does not name the step: $(cat "$ERR")"
	assert_restore_left_nothing "$T/before"
done
image_sums "$T/scm.img" | diff -u "$T/sums" - || fail "the failed restores changed the images"

ckpt_restore "$T/scm.img"
assert_same_tree "$T/before" "$P"
# the pid of the exited child was only borrowed for the credentials
! kill -0 "$child" 2>/dev/null || [[ $(awk '/^PPid/ { print $2 }' "/proc/$child/status") != "$P" ]] ||
	fail "pid $child (the credentials' sender) is left over"
touch "$D/go"
all_ok "$LOG"
log "after restore: fds in flight with the same bytes, each works, credentials kept"
kill_tree "$P"
untrack "$P"

# ---- a file that cannot be in flight: refused naming pid, fd and what --------------
start_workload E "$T/ep.ready" -- "$WL/scmrights" "$T" "$T/ep.log" "$T/ep.ready" epoll
if ckptctl_run dump "$E" -D "$T/ep.img"; then
	fail "dump of an epoll instance in flight succeeded"
fi
msg=$(cat "$ERR")
log "epoll in flight: refused: $msg"
[[ $msg == *"pid $E: fd "* && $msg == *"in flight"* && $msg == *"epoll"* ]] ||
	fail "epoll in flight: the error does not name the pid, the fd and the file: $msg"
[[ ! -e $T/ep.img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$E"
kill_tree "$E"
untrack "$E"

# ---- the same kind in flight and kept by the program: the program's description -------
mkdir -p "$T/eps"
start_workload E "$T/eps.ready" -- "$WL/scmrights" "$T/eps" "$T/eps.log" "$T/eps.ready" epollshared
ckpt_dump "$E" "$T/eps.img"
assert_tree_gone "$E"
ckpt_restore "$T/eps.img"
touch "$T/eps/go"
wait_grep "$T/eps.log" 'ok epoll shared|FAIL' 10
no_fail "$T/eps.log"
log "an epoll in flight that the program keeps too: one instance, registration kept"
kill_tree "$E"
untrack "$E"

mkdir -p "$T/tcs"
start_workload E "$T/tcs.ready" -- "$WL/scmrights" "$T/tcs" "$T/tcs.log" "$T/tcs.ready" tcpshared
ckpt_dump "$E" "$T/tcs.img"
assert_tree_gone "$E"
ckpt_restore "$T/tcs.img"
touch "$T/tcs/go"
wait_grep "$T/tcs.log" 'ok tcp shared|FAIL' 10
no_fail "$T/tcs.log"
log "a TCP connection in flight that the program keeps too: one socket, data flows"
kill_tree "$E"
untrack "$E"

# ---- a socket in flight in its own peer's queue (a cycle), a listener in its queue ----
mkdir -p "$T/cyc"
start_workload C "$T/cyc.ready" -- "$WL/scmrights" "$T/cyc" "$T/cyc.log" "$T/cyc.ready" cycle
ckpt_dump "$C" "$T/cyc.img"
assert_tree_gone "$C"
ckpt_restore "$T/cyc.img"
touch "$T/cyc/go"
wait_grep "$T/cyc.log" 'ok listener|FAIL' 10
no_fail "$T/cyc.log"
grep -qx "ok cycle" "$T/cyc.log" || fail "no 'ok cycle': $(cat "$T/cyc.log")"
log "a socket in flight in its own peer's queue, a listener in flight in its queue: restored, working"
kill_tree "$C"
untrack "$C"
pass
