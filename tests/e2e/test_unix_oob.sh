#!/bin/bash
# SPDX-License-Identifier: MIT
# What a peek does not show of a unix stream queue, read by the kernel
# reader (lib/kread.c, lib/kinds/unix.c dump_stream_marks): out-of-band
# bytes (send(MSG_OOB)) pending, in line, superseded or already taken, and
# where a send with fds began after plain bytes. tests/workloads/unixoob.py
# queues each case on socketpairs and, once told, reads them two ways
# (recv(MSG_OOB) first; small reads with SIOCATMARK) and compares every
# answer with a pair made the same way then, never checkpointed:
#  - a failed dump and --leave-running change nothing;
#  - the images hold the pending byte's offset (oob_at), the taken marks
#    (oob_taken), SO_OOBINLINE and each send with fds apart from the bytes
#    before it;
#  - after restore every case reads exactly as the never-checkpointed pair.
. "$(dirname "$0")/lib.sh"

check_log()
{
	wait_grep "$1" '^DONE' 20
	! grep -q FAIL "$1" || fail "$2: $(grep FAIL "$1")"
	for c in mid head twice inline taken fds plainfds; do
		for w in oobfirst reads; do
			grep -q "^ok $c $w:" "$1" || fail "$2: no 'ok $c $w' in $1: $(cat "$1")"
		done
	done
}

# ---- a failed dump and --leave-running ---------------------------------------------
LOG=$T/lr.log
D=$T/lr
mkdir -p "$D"
diag_add "$LOG"
start_workload P "$T/lr.ready" -- "$PYTHON" "$WLSRC/unixoob.py" "$D" "$LOG" "$T/lr.ready"
CKPT_FAULT=unix-queue ckptctl_run dump "$P" -D "$T/fault.img" && fail "dump succeeded despite CKPT_FAULT=unix-queue"
grep -q unix-queue "$ERR" || fail "the error does not name the step: $(cat "$ERR")"
assert_running "$P"
ckpt_dump "$P" "$T/lr.img" --leave-running
assert_running "$P"
touch "$D/go"
check_log "$LOG" "after --leave-running"
log "a failed dump and --leave-running: every case reads as a pair never checkpointed"
kill_tree "$P"
untrack "$P"

# ---- dump, images, restore -----------------------------------------------------------
LOG=$T/oob.log
D=$T/oob
mkdir -p "$D"
diag_add "$LOG"
start_workload P "$T/oob.ready" -- "$PYTHON" "$WLSRC/unixoob.py" "$D" "$LOG" "$T/oob.ready"
tree_snapshot "$P" >"$T/before"
ckpt_dump "$P" "$T/oob.img"
assert_tree_gone "$P"
"$CKPTCTL" show "$T/oob.img" files.img >"$T/files.json" || fail "ckptctl show files.img failed"
"$PYTHON" - "$T/files.json" >"$T/report" <<'PY' || fail "images: $(cat "$T/report")"
import json, sys
doc = json.load(open(sys.argv[1]))
docs = doc if isinstance(doc, list) else [doc]
socks = [e["unix_sk"] for d in docs for e in d.get("entries", []) if "unix_sk" in e]
def queue(u):
    return [bytes.fromhex(m.get("data", "")).decode() for m in u.get("msgs", [])]
def find(joined):
    return [u for u in socks if "".join(queue(u)) == joined]
# mid: "ab", pending "c", "de"; twice: "abc" with "d" pending; head: the byte a peek skips
for joined, at in (("abcde", 2), ("abcde", 3), ("xyz", 0)):
    assert any(int(u.get("oob_at", -1)) == at for u in find(joined)), (joined, at, find(joined))
inline = [u for u in find("abcde") if u.get("oobinline")]
assert len(inline) == 2 and all(int(u["oob_at"]) == 2 for u in inline), inline
# taken: "ab", a mark where "c" was, "de"
taken = [u for u in find("abde") if u.get("oob_taken")]
assert len(taken) == 2 and all([int(x) for x in u["oob_taken"]] == [2] for u in taken), taken
# plainfds: the fds' sends apart from the bytes before them
pf = find("abcdefg")
assert len(pf) == 2 and all(queue(u) == ["abc", "de", "fg"] for u in pf), pf
assert all([len(m.get("fds", [])) for m in u["msgs"]] == [0, 1, 1] for u in pf), pf
print("ok")
PY
log "images: $(tail -n 1 "$T/report")"
ckpt_restore "$T/oob.img"
assert_same_tree "$T/before" "$P"
touch "$D/go"
check_log "$LOG" "after restore"
log "after restore: every case reads as a pair never checkpointed"
kill_tree "$P"
untrack "$P"
pass
