#!/bin/bash
# SPDX-License-Identifier: MIT
# (j) ckptctl output sanity: `show` prints valid JSON describing the images
# (root pid, every task), `check` passes on this machine, dump/restore --json
# print one valid JSON object, restore without --json says "restored pid N",
# and bad invocations fail with a message naming what is wrong.
. "$(dirname "$0")/lib.sh"

D=$T/bash
mkdir -p "$D"
start_workload MAIN "$D/ready" -- bash "$WLSRC/bashtree.sh" "$D"
MEMBERS=("$MAIN" $(cat "$D/child1.pid" "$D/child2.pid" "$D/grandchild.pid"))
pids_snapshot "${MEMBERS[@]}" >"$T/tree.before"

ckptctl_run check || fail "ckptctl check failed on this machine: $(cat "$OUT" "$ERR")"
[[ -s $OUT ]] || fail "ckptctl check printed nothing"
log "check: $(head -n 3 "$OUT" | tr '\n' ' ')"

ckpt_dump "$MAIN" "$T/img" --json
"$PYTHON" -m json.tool "$OUT" >/dev/null || fail "dump --json is not valid JSON: $(cat "$OUT")"
[[ $(json_get "$OUT" status) == ok ]] || fail "dump --json status is not ok: $(cat "$OUT")"
ntasks=$(json_get "$OUT" tasks) || ntasks=
log "dump --json: $(cat "$OUT")"
assert_tree_gone "$MAIN"

# show: one JSON document (or one per line), naming the root pid and tasks.
ckptctl_run show "$T/img" || fail "ckptctl show failed: $(cat "$ERR")"
cp "$OUT" "$T/show.json"
"$PYTHON" - "$T/show.json" "$MAIN" <<'PY' || fail "ckptctl show output is not what it should be"
import json, sys
text = open(sys.argv[1]).read()
root = int(sys.argv[2])
try:
    docs = [json.loads(text)]
except ValueError:
    docs = [json.loads(l) for l in text.splitlines() if l.strip()]
found = {"root": False, "pids": set()}
def walk(v, key=""):
    if isinstance(v, dict):
        for k, x in v.items():
            walk(x, k)
    elif isinstance(v, list):
        for x in v:
            walk(x, key)
    elif key.lower() in ("root_pid", "rootpid") and v == root:
        found["root"] = True
    elif key.lower() == "pid" and isinstance(v, int):
        found["pids"].add(v)
for d in docs:
    walk(d)
print("show: %d bytes of JSON, root_pid found: %s, pids: %s" % (len(text), found["root"], sorted(found["pids"])))
sys.exit(0 if found["root"] and root in found["pids"] else 1)
PY
for p in $(awk '{print $1}' "$T/tree.before"); do
	grep -qw -- "$p" "$T/show.json" || fail "ckptctl show does not mention task $p"
done
[[ -z $ntasks || $ntasks == "$(wc -l <"$T/tree.before")" ]] ||
	log "note: dump --json tasks=$ntasks, the tree had $(wc -l <"$T/tree.before") tasks when snapshotted"

# restore --json: exactly the documented keys.
ckpt_restore "$T/img"
"$PYTHON" - "$OUT" "$MAIN" <<'PY' || fail "restore --json output is wrong: $(cat "$OUT")"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 1, "expected one line, got %d" % len(lines)
o = json.loads(lines[0])
assert o["status"] == "ok" and o["root_pid"] == int(sys.argv[2]), o
assert isinstance(o["tasks"], int) and o["tasks"] >= 4, o
assert isinstance(o["seconds"], (int, float)) and o["seconds"] >= 0, o
PY
assert_same_pids "$T/tree.before" "${MEMBERS[@]}"
kill_tree "$MAIN"
untrack "$MAIN"
assert_tree_gone "$MAIN"

# restore without --json
ckptctl_run restore "$T/img" || fail "restore failed: $(cat "$ERR")"
TRACKED+=("$MAIN")
grep -qE "restored pid $MAIN\b" "$OUT" || fail "restore did not print 'restored pid $MAIN': $(cat "$OUT")"
kill_tree "$MAIN"

# Bad invocations.
ckptctl_run show "$T/nonexistent" && fail "show of a missing directory succeeded"
grep -q nonexistent "$ERR" || fail "show of a missing directory: error does not name it: $(cat "$ERR")"
mkdir "$T/empty"
ckptctl_run show "$T/empty" && fail "show of an empty directory succeeded"
grep -q inventory "$ERR" || fail "show of a non-checkpoint: error does not mention the inventory: $(cat "$ERR")"
ckptctl_run restore "$T/empty" && fail "restore of an empty directory succeeded"
[[ -s $ERR ]] || fail "restore of an empty directory: no error message"
start_workload MH "$T/memhog.ready" -- "$WL/memhog" 4 "$T/memhog.log" "$T/memhog.ready"
ckptctl_run dump "$MH" -D "$T/img" && fail "dump into a non-empty directory succeeded"
grep -q -- "$T/img" "$ERR" || fail "dump into a non-empty directory: error does not name it: $(cat "$ERR")"
assert_running "$MH"
ckptctl_run frobnicate && fail "unknown command accepted"
[[ -s $ERR || -s $OUT ]] || fail "unknown command: no usage message"
pass
