#!/bin/bash
# SPDX-License-Identifier: MIT
# Registers and xstate: a program keeps known values in ymm0-ymm14 (AVX,
# upper halves included), MXCSR (non-default rounding), callee-saved
# registers and the fs base, and checks them every 10 ms from one asm loop.
# After restore it must keep appending "." (never "X"): every register came
# back, and its interrupted nanosleep returned cleanly.
. "$(dirname "$0")/lib.sh"

grep -qw avx /proc/cpuinfo || fail "this test needs a CPU with AVX"
LOG=$T/regs.log
diag_add "$LOG"
log_size_at_least() { (($(stat -c %s "$LOG") >= $1)); }
start_workload RG "$T/regs.ready" -- "$WL/regs" "$LOG" "$T/regs.ready"
wait_for 10 "the register loop to run" log_size_at_least 20
tree_snapshot "$RG" >"$T/tree.before"

ckpt_dump "$RG" "$T/img"
assert_tree_gone "$RG"
before=$(stat -c %s "$LOG")
grep -q X "$LOG" && fail "registers were already wrong before the restore"

ckpt_restore "$T/img"
[[ $RESTORED_PID == "$RG" ]] || fail "restored root pid $RESTORED_PID, dumped $RG"
assert_same_tree "$T/tree.before" "$RG"
wait_for 10 "the register loop to go on after restore" log_size_at_least $((before + 50))
grep -q X "$LOG" && fail "a register, MXCSR or the fs base differs after restore"
assert_running "$RG"
log "register loop: $before iterations before the dump, $(stat -c %s "$LOG") now, no mismatch"
pass
