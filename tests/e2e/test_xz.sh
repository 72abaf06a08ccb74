#!/bin/bash
# SPDX-License-Identifier: MIT
# xz -9 -T1 (a 674 MiB dictionary setting, some hundred MiB resident)
# compressing 10 MiB is checkpointed mid-compression, killed and restored:
# it finishes and its output is byte for byte the output of an uninterrupted
# run, and xz itself finds it intact. Its output file is open for writing at
# an offset at the checkpoint and the restored xz goes on writing it there.
: "${CKPT_E2E_TIMEOUT:=270}"
export CKPT_E2E_TIMEOUT
. "$(dirname "$0")/lib.sh"

XZ=$(command -v xz) || fail "xz not found (packaging/install-deps.sh installs xz-utils)"
MIB=${XZ_MIB:-10}

# Deterministic input, partly compressible: base64 of a seeded pseudo-random
# stream with some stretches repeated from earlier in it.
"$PYTHON" - "$T/input" "$MIB" <<'PY'
import base64, random, sys
r = random.Random(42)
want = int(sys.argv[2]) << 20
out = bytearray()
while len(out) < want:
    if len(out) > 65536 and r.random() < 0.3:
        at = r.randrange(len(out) - 4096)
        out += out[at:at + r.randint(64, 4096)]
    else:
        out += base64.b64encode(r.randbytes(3 * 1024))
open(sys.argv[1], "wb").write(out[:want])
PY

t0=$(now_us)
"$XZ" -9 -T1 -c "$T/input" >"$T/ref.xz" || fail "uninterrupted xz failed"
log "uninterrupted xz -9: $(stat -c %s "$T/ref.xz") bytes in $((($(now_us) - t0) / 1000)) ms"

# shellcheck disable=SC2016 # expanded by the inner shell
start_workload XZPID "$T/xz.ready" --stdout "$T/out.xz" -- bash -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" && exec "$2" -9 -T1 -c "$3"' xz "$T/xz.ready" "$XZ" "$T/input"
ref=$(stat -c %s "$T/ref.xz")
third_out() { (($(stat -c %s "$T/out.xz") >= ref / 3)); }
wait_for 120 "xz to write a third of its output" third_out
proc_stat "$XZPID" && [[ $S_COMM == xz ]] || fail "pid $XZPID is not xz (comm '$S_COMM')"
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$XZPID/status")
ckpt_dump "$XZPID" "$T/img"
assert_tree_gone "$XZPID"
at=$(stat -c %s "$T/out.xz")
((at < ref)) || fail "xz had written all $ref bytes before the checkpoint: not mid-compression (raise XZ_MIB)"
log "checkpoint with $at of $ref output bytes written, RSS $((rss / 1024)) MiB, images $(du -sh "$T/img" | cut -f1)"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$XZPID" ]] || fail "restored pid $RESTORED_PID, dumped $XZPID"
assert_gone_long() { GONE_TIMEOUT=150 assert_gone "$@"; }
assert_gone_long "$XZPID"
cmp "$T/out.xz" "$T/ref.xz" || fail "output of the restored xz differs from the uninterrupted run's"
"$XZ" -t "$T/out.xz" || fail "xz -t: the restored run's output is damaged"
log "restored xz finished: $(stat -c %s "$T/out.xz") bytes, identical to the uninterrupted run"
pass
