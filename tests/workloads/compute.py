# SPDX-License-Identifier: MIT
# A deterministic long computation for the batch-job tests (test_slurm.sh):
# STEPS steps of a 64-bit LCG stirring a 4 MiB buffer in memory; prints
# "step N" every 50 steps and at the end "result SHA256 X". Its state lives
# only in memory: a run restored from a checkpoint prints an uninterrupted
# run's result only if that memory came back exactly. An optional second
# argument is its exit status; a third, seconds to sleep every 50 steps (a
# longer run with the same result).
import hashlib
import sys
import time

steps = int(sys.argv[1])
pace = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
state = bytearray(4 << 20)
mask = (1 << 64) - 1
x = 1
for i in range(steps):
    for _ in range(5000):
        x = (x * 6364136223846793005 + 1442695040888963407) & mask
        state[x % len(state)] ^= x >> 56
    if i % 50 == 0:
        print("step", i, flush=True)
        if pace:
            time.sleep(pace)
print("result", hashlib.sha256(state).hexdigest(), x, flush=True)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
