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

# pss_near WHAT NOW BEFORE [PCT]: PSS NOW (kB) within PCT% (default 5) of BEFORE.
pss_near()
{
	local d=$(($2 - $3))
	log "$1: PSS $(($2 / 1024)) MiB (before: $(($3 / 1024)) MiB)"
	((d < 0)) && d=$((-d))
	((d * 100 <= $3 * ${4:-5})) ||
		fail "$1: PSS of the tree is $2 kB, $3 kB before: more than ${4:-5}% apart"
}

# write_shared PID WHAT: PID writes pages it shares (SIGUSR1, "wrote PID 1");
# every process of the tree then still sees its own memory.
write_shared()
{
	kill -USR1 "$1"
	wait_grep "$LOG" "^wrote $1 1\$" 10
	wait_for 30 "every process to check its memory after pid $1 wrote" all_ok_after "$(line_count "$LOG")"
	no_corrupt || fail "pid $1 writing $2 changed another process's memory"
	log "pid $1 wrote $2: every process still sees its own memory"
}
