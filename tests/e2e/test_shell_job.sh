#!/bin/bash
# SPDX-License-Identifier: MIT
# A terminal job. ttyecho runs on a real pty made by a small driver
# (tests/e2e/ptyrun.py: what script, tmux or ssh would be),
# turns the terminal's ECHO off and echoes each typed line with a counter.
# Without --shell-job its dump is refused with a clear message and it keeps
# running. Dumped with --shell-job, it is restored by `ckptctl restore
# --shell-job` running on a NEW pty: same pid, its own process group in the
# new terminal's session, the foreground job, ECHO still off; it reads what
# is typed there and the counter goes on; at end of file it says so through
# its /dev/tty fd (the user's terminal too) and exits, and ckptctl returns
# its exit status. A failed --shell-job restore gives the terminal back. A
# second round dumps through ckptd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

DRV=$CKPT_SRC/tests/e2e/ptyrun.py
N=0 # terminals made so far

# new_tty VAR CMD...: run CMD on a new terminal $T/ttyK (output $T/ttyK.out,
# typed input through the FIFO $T/ttyK.ctl); VAR gets K.
new_tty()
{
	local var=$1
	shift
	N=$((N + 1))
	mkfifo "$T/tty$N.ctl"
	: >"$T/tty$N.out"
	diag_add "$T/tty$N.out"
	"$PYTHON" "$DRV" "$T/tty$N.out" "$T/tty$N.ctl" -- "$@" 2>>"$T/tty$N.err" &
	disown $!
	diag_add "$T/tty$N.err"
	printf -v "$var" %s "$N"
}
type_in() { printf '%s\n' "$2" >"$T/tty$1.ctl"; }
tty_status() { cat "$T/tty$1.out.status" 2>/dev/null; }

# start_job: ttyecho on a new terminal; sets J (pid) and K (terminal).
start_job()
{
	rm -f "$T/ready"
	new_tty K "$WL/ttyecho" "$T/ready"
	wait_for 10 "ttyecho to start" test -s "$T/ready"
	J=$(<"$T/ready")
	TRACKED+=("$J")
	wait_grep "$T/tty$K.out" "^state pid=$J pgrp=$J fg=$J sid=$J echo=0 icanon=1"
	log "ttyecho pid $J on terminal $K: $(grep -m1 '^state' "$T/tty$K.out" | tr -d '\r')"
}

# restore_job DIR: a shell on a new terminal runs ckptctl restore --shell-job,
# then prints its exit status and the terminal's settings; sets R (terminal).
restore_job()
{
	local img=$1
	wait_for 10 "pid $J to be free" gone "$J"
	# shellcheck disable=SC2016 # expanded by that shell
	new_tty R sh -c '"$0" restore --shell-job "$1"; echo "ckptctl exit $?"
		read -r _ _ _ _ g _ _ fg _ </proc/$$/stat; echo "shell pgrp $g fg $fg"; stty -a' \
		"$CKPTCTL" "$img"
	wait_grep "$T/tty$R.out" "restored pid $J " 20
	log "$(grep -m1 'restored pid' "$T/tty$R.out" | tr -d '\r')"
}

# check_restored_job FIRST: lines typed on the new terminal are echoed with
# the counter going on from FIRST, by the same pid, as the foreground job
# of the new terminal's session (the shell's), ECHO still off; then EOF:
# ckptctl returns the job's status and gives the terminal back to the
# shell with its own settings (ECHO on).
check_restored_job()
{
	local first=$1 sid
	assert_running "$J"
	proc_stat "$J"
	sid=$S_SID
	[[ $S_PGID == "$J" ]] || fail "restored pid $J is in process group $S_PGID, not its own"
	[[ $sid != "$J" ]] || fail "restored pid $J leads a session: it should be in the shell's"
	proc_stat "$sid" || fail "session $sid of the restored job has no leader"
	[[ $S_COMM == sh ]] || fail "session $sid of the restored job is led by $S_COMM, not the shell"
	type_in "$R" "four"
	wait_grep "$T/tty$R.out" "^echo $first: four \| pid=$J pgrp=$J fg=$J sid=$sid echo=0 icanon=1"
	type_in "$R" "five"
	wait_grep "$T/tty$R.out" "^echo $((first + 1)): five \| pid=$J pgrp=$J fg=$J"
	log "restored job: $(grep "^echo $first:" "$T/tty$R.out" | tr -d '\r')"
	printf '\004' >"$T/tty$R.ctl"
	wait_grep "$T/tty$R.out" "^eof"
	wait_grep "$T/tty$R.out" "^ckptctl exit 0"
	grep -qE '^shell pgrp ([0-9]+) fg \1\b' "$T/tty$R.out" ||
		fail "the shell is not the foreground job again: $(grep '^shell pgrp' "$T/tty$R.out")"
	wait_for 10 "the shell on terminal $R to exit" eval "[[ -s $T/tty$R.out.status ]]"
	grep -qE '(^|[ ;])echo([ ;]|$)' "$T/tty$R.out" ||
		fail "the terminal did not get its ECHO back after the job: $(grep -E 'echo' "$T/tty$R.out" | tail -n 2)"
	[[ $(tty_status "$R") == "exit 0" ]] || fail "the shell on terminal $R: $(tty_status "$R")"
	untrack "$J"
}

# ---- refused without --shell-job ------------------------------------------------
start_job
type_in "$K" "one"
wait_grep "$T/tty$K.out" "^echo 1: one \| pid=$J"
type_in "$K" "two"
wait_grep "$T/tty$K.out" "^echo 2: two \| pid=$J"

if ckptctl_run dump "$J" -D "$T/img0"; then
	fail "dump of a job with the user's terminal succeeded without --shell-job"
fi
grep -qE "pid $J: fd 0: /dev/pts/[0-9]+ is a terminal .*run with --shell-job" "$ERR" ||
	fail "no clear refusal (pid, fd, /dev/pts/N, --shell-job): $(cat "$ERR")"
log "refused: $(cat "$ERR")"
[[ ! -e $T/img0/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$J"
type_in "$K" "three"
wait_grep "$T/tty$K.out" "^echo 3: three \| pid=$J pgrp=$J fg=$J"

# ---- dump --shell-job, restore onto a new terminal ----------------------------------
ckpt_dump "$J" "$T/img" --shell-job
wait_for 10 "terminal $K to close after the dump killed the job" eval "[[ -s $T/tty$K.out.status ]]"
assert_tree_gone "$J"

# a plain restore of a shell job is refused, and leaves nothing behind
wait_for 10 "pid $J to be free" gone "$J"
if ckptctl_run restore "$T/img"; then
	fail "restore of a shell job without --shell-job succeeded"
fi
grep -q -- "--shell-job" "$ERR" || fail "no hint to --shell-job in: $(cat "$ERR")"
gone "$J" || fail "a refused restore left pid $J"

# a --shell-job restore that fails after the job became the foreground job
# gives the terminal back to the shell, with its own settings
# shellcheck disable=SC2016 # expanded by that shell
new_tty F env CKPT_FAULT=restore-memory sh -c '"$0" restore --shell-job "$1"; echo "ckptctl exit $?"
	read -r _ _ _ _ g _ _ fg _ </proc/$$/stat; echo "shell pgrp $g fg $fg"; stty -a' \
	"$CKPTCTL" "$T/img"
wait_grep "$T/tty$F.out" "^ckptctl exit 1"
wait_grep "$T/tty$F.out" "restore-memory"
grep -qE '^shell pgrp ([0-9]+) fg \1\b' "$T/tty$F.out" ||
	fail "failed restore: the shell is not the foreground job again: $(grep '^shell pgrp' "$T/tty$F.out")"
wait_grep "$T/tty$F.out" '(^|[ ;])echo([ ;]|$)'
gone "$J" || fail "a failed --shell-job restore left pid $J"
log "a failed --shell-job restore gave the terminal back"

restore_job "$T/img"
check_restored_job 4

# ---- the same through ckptd (dump), restored in process --------------------------------
start_ckptd
start_job
type_in "$K" "one"
wait_grep "$T/tty$K.out" "^echo 1: one \| pid=$J"
if ckptctl_run dump "$J" -D "$T/img1"; then
	fail "ckptd: dump without --shell-job succeeded"
fi
grep -qE "/dev/pts/[0-9]+ is a terminal .*run with --shell-job" "$ERR" ||
	fail "ckptd: no clear refusal: $(cat "$ERR")"
assert_running "$J"
type_in "$K" "two"
type_in "$K" "three"
wait_grep "$T/tty$K.out" "^echo 3: three \| pid=$J"
ckpt_dump "$J" "$T/img2" --shell-job
assert_tree_gone "$J"
stop_ckptd
restore_job "$T/img2"
check_restored_job 4
pass
