#!/bin/bash
# SPDX-License-Identifier: MIT
# Progress and restore cancel:
# - `ckptctl dump --json` of a 256 MiB memhog prints progress lines
#   {"progress":{...}} with growing bytes, then the result;
# - `ckptctl restore --json` prints progress lines whose bytes grow to
#   bytes_total (= the dump's pages_bytes), then the result; the same
#   through ckptd (lines carry the job id);
# - a restore of a 1 GiB memhog cancelled in its memory stage (ckptd
#   `cancel JOB`, SIGTERM to ckpt-restore, Ctrl-C to ckptctl) fails as
#   cancelled, leaves no process with the tree's pid and the images as
#   they were.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

# check_progress FILE TOTAL WHAT: the {"progress":..} lines of FILE come
# before the last line, bytes never shrink, the last bytes is TOTAL (and so
# is bytes_total where given); prints the number of progress lines.
check_progress()
{
	"$PYTHON" - "$@" <<'PY'
import json, sys
path, total, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
objs = [json.loads(l) for l in open(path) if l.strip()]
prog = [o["progress"] for o in objs if "progress" in o]
def bad(msg):
    print("%s: %s" % (what, msg))
    sys.exit(1)
if not prog:
    bad("no progress line")
if "progress" in objs[-1] or objs[-1].get("status") != "ok":
    bad("the last line is not an ok result: %s" % objs[-1])
last = -1
for p in prog:
    for k in ("bytes", "tasks_done", "tasks_total"):
        if not isinstance(p.get(k), int):
            bad("progress line without integer %s: %s" % (k, p))
    if p["bytes"] < last:
        bad("bytes went down: %d after %d" % (p["bytes"], last))
    if "bytes_total" in p and p["bytes_total"] not in (0, total):
        bad("bytes_total %d, expected %d" % (p["bytes_total"], total))
    last = p["bytes"]
if last != total:
    bad("last progress bytes %d, expected %d" % (last, total))
if prog[-1]["tasks_done"] != prog[-1]["tasks_total"]:
    bad("last progress line has %d/%d tasks" % (prog[-1]["tasks_done"], prog[-1]["tasks_total"]))
print(len(prog))
PY
}

# img_sums DIR: checksums of the images (not of the logs ckptd adds there);
# for the large pages images size and change times (hashing 1 GiB is slow).
img_sums()
{
	(
		cd "$1" || exit 1
		for f in *.img; do
			case $f in
			pages-*) stat -c '%n %s %Y %Z' -- "$f" ;;
			*) sha256sum -- "$f" ;;
			esac
		done
	)
}

# ---- in process: dump --json and restore --json ---------------------------------
LOG=$T/mh.log
diag_add "$LOG"
start_workload MH "$T/mh.ready" -- "$WL/memhog" 256 "$LOG" "$T/mh.ready"
wait_lines "$LOG" 2 20

ckpt_dump "$MH" "$T/img" --json
assert_tree_gone "$MH"
total=$(json_get "$OUT" pages_bytes) || fail "dump --json has no pages_bytes: $(cat "$OUT")"
((total >= 256 << 20)) || fail "dump wrote $total bytes of pages for a 256 MiB memhog"
n=$(check_progress "$OUT" "$total" "dump --json") || fail "$n; output: $(cat "$OUT")"
log "dump --json: $n progress line(s) up to $total bytes"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$MH" ]] || fail "restored root pid $RESTORED_PID, dumped $MH"
n=$(check_progress "$OUT" "$total" "restore --json") || fail "$n; output: $(cat "$OUT")"
grep -q '"stage":"memory"' "$OUT" || fail "restore --json progress names no memory stage: $(cat "$OUT")"
((n >= 4)) || fail "restore --json printed only $n progress lines for 256 MiB"
assert_tree_running "$MH"
log "restore --json: $n progress lines up to $total bytes"
kill_tree "$MH"
assert_tree_gone "$MH"

# ---- through ckptd ---------------------------------------------------------------
start_ckptd
ckpt_restore "$T/img"
[[ $RESTORED_PID == "$MH" ]] || fail "restored root pid $RESTORED_PID through ckptd, dumped $MH"
n=$(check_progress "$OUT" "$total" "ckptd restore --json") || fail "$n; output: $(cat "$OUT")"
grep -q '"progress":{"job_id":[1-9]' "$OUT" || fail "ckptd progress lines carry no job id: $(cat "$OUT")"
assert_tree_running "$MH"
log "ckptd restore --json: $n progress lines up to $total bytes"
kill_tree "$MH"
assert_tree_gone "$MH"
untrack "$MH"

# ---- cancel ------------------------------------------------------------------------
BIG_LOG=$T/big.log
diag_add "$BIG_LOG"
start_workload BIG "$T/big.ready" -- "$WL/memhog" 1024 "$BIG_LOG" "$T/big.ready"
wait_lines "$BIG_LOG" 2 60
CKPTCTL_TIMEOUT=120 ckpt_dump "$BIG" "$T/big.img"
assert_tree_gone "$BIG"
untrack "$BIG"
img_sums "$T/big.img" >"$T/big.sums"

# restore_bg OUT: ckptctl restore --json of big.img in the background ($BG).
restore_bg()
{
	"$CKPTCTL" restore "$T/big.img" --json >"$1" 2>"$1.err" &
	BG=$!
	diag_add "$1" "$1.err"
}

# A progress line of the memory stage with some pages read.
in_memory() { grep -qE '"progress":\{[^}]*"bytes":[1-9]' "$1"; }

# after_cancel WHAT OUT: the restore failed as cancelled and left nothing.
after_cancel()
{
	local what=$1 out=$2
	wait "$BG" && fail "$what: the cancelled restore succeeded: $(cat "$out")"
	grep -q '"status":"error"' "$out" || fail "$what: no error result: $(cat "$out")"
	grep -q 'cancel' "$out" || fail "$what: the error does not say cancelled: $(cat "$out" "$out.err")"
	GONE_TIMEOUT=5 assert_gone "$BIG"
	poll_for 3 no_stray_restorer || fail "$what: a ckpt-restore is still running"
	img_sums "$T/big.img" | cmp -s - "$T/big.sums" || fail "$what: the images changed"
	log "$what: $(tail -n 1 "$out")"
}

# 1. through ckptd: ckptctl cancel JOB
restore_bg "$T/c1.out"
poll_for 60 in_memory "$T/c1.out" || fail "ckptd restore: no memory progress: $(cat "$T/c1.out")"
job=$(grep -o '"job_id":[0-9]*' "$T/c1.out" | head -n 1 | cut -d: -f2)
ckptctl_run cancel "$job" || fail "ckptctl cancel $job failed: $(cat "$ERR")"
after_cancel "ckptd cancel of job $job" "$T/c1.out"
ckptctl_run ps --json || fail "ckptctl ps failed: $(cat "$ERR")"
grep "\"job_id\":$job," "$OUT" | grep -q '"state":"cancelled"' ||
	fail "ps does not show job $job cancelled: $(cat "$OUT")"
stop_ckptd

# 2. in process: SIGTERM to ckpt-restore
restore_bg "$T/c2.out"
poll_for 60 in_memory "$T/c2.out" || fail "restore: no memory progress: $(cat "$T/c2.out")"
rpid=$(cat /proc/"$BG"/task/*/children 2>/dev/null | tr ' ' '\n' | head -n 1)
[[ -n $rpid && $(cat "/proc/$rpid/comm" 2>/dev/null) == ckpt-restore ]] ||
	fail "no ckpt-restore under ckptctl (pid $BG): '$rpid'"
kill -TERM "$rpid"
after_cancel "SIGTERM to ckpt-restore" "$T/c2.out"

# 3. in process: Ctrl-C (SIGINT) to ckptctl is passed on to the restorer
restore_bg "$T/c3.out"
poll_for 60 in_memory "$T/c3.out" || fail "restore: no memory progress: $(cat "$T/c3.out")"
kill -INT "$BG"
after_cancel "SIGINT to ckptctl" "$T/c3.out"

# the images still restore
CKPTCTL_TIMEOUT=120 ckpt_restore "$T/big.img"
[[ $RESTORED_PID == "$BIG" ]] || fail "restored root pid $RESTORED_PID, dumped $BIG"
assert_running "$BIG"
pass
