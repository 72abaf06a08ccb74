# SPDX-License-Identifier: MIT
# Helpers of the tests of the prefork workload (copy-on-write sharing):
# sourced after lib.sh, with LOG its log and PF its pid.

# tree_pss ROOT: PSS in kB summed over ROOT and its descendants.
tree_pss()
{
	local p sum=0 v
	for p in $(tree_pids "$1"); do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# ok_after PID LINE: PID logged "ok" after line LINE of the log.
ok_after() { tail -n "+$(($2 + 1))" "$LOG" | grep -q "^ok $1 "; }

# all_ok_after LINE: every process of the tree did.
all_ok_after()
{
	local p
	for p in $(tree_pids "$PF"); do
		ok_after "$p" "$1" || return 1
	done
}

no_corrupt() { ! grep -n CORRUPT "$LOG"; }
