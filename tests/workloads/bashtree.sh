#!/bin/bash
# SPDX-License-Identifier: MIT
# bashtree.sh DIR: a bash process tree whose state lives in shell variables.
#
#   main (pid in DIR/ready) ─┬─ child1       counts into DIR/child1.log
#                            └─ child2 ──── grandchild
# Each member writes its $BASHPID to DIR/<name>.pid and then every 100 ms a
# line "pid=<BASHPID> n=<counter>" to DIR/<name>.log (main too, as "main").
# No command substitution, no pipe: nothing here holds a pipe at dump time.
set -u
dir=$1

count() {
	local name=$1 i=0
	echo "$BASHPID" >"$dir/$name.pid"
	while :; do
		i=$((i + 1))
		echo "pid=$BASHPID n=$i" >>"$dir/$name.log"
		sleep 0.1
	done
}

child2() {
	count grandchild &
	count child2
}

count child1 &
child2 &
# Ready once every member has announced itself.
for ((k = 0; k < 100; k++)); do
	[[ -s $dir/child1.pid && -s $dir/child2.pid && -s $dir/grandchild.pid ]] && break
	sleep 0.05
done
echo "$$" >"$dir/ready.tmp" && mv "$dir/ready.tmp" "$dir/ready"
count main
