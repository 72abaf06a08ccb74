# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# tests/e2e/lib.sh: helpers for the end-to-end tests. Source it first thing:
#
#     . "$(dirname "$0")/lib.sh"
#
# It re-executes the test under tests/workloads/reaper (a child subreaper
# with a timeout), so that whatever the test starts, dumps or restores is
# reaped and killed when the test ends, even on failure. Every wait here is
# bounded. A test calls `fail MSG` (prints diagnostics, exits 1) or `pass`.
#
# Environment: CKPT_BUILD (build dir, default $CKPT_SRC/build), CKPT_SRC
# (source dir), CKPT_E2E_TIMEOUT (whole test, default 150 s), CKPT_E2E_KEEP=1
# (keep the work directory), CKPT_E2E_TMP (where to put it, default /tmp).

# shellcheck disable=SC2034 # variables used by the tests that source this
set -u -o pipefail

E2E_NAME=$(basename "$0" .sh)
: "${CKPT_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CKPT_BUILD:=$CKPT_SRC/build}"
export CKPT_SRC CKPT_BUILD
CKPTCTL=$CKPT_BUILD/ckptctl
WL=$CKPT_BUILD/tests/workloads
WLSRC=$CKPT_SRC/tests/workloads
PYTHON=${CKPT_PYTHON:-/usr/bin/python3}
[[ -x $PYTHON ]] || PYTHON=python3

if [[ -z ${CKPT_E2E_UNDER_REAPER:-} ]]; then
	if [[ $(id -u) != 0 ]]; then
		echo "FAIL $E2E_NAME: end-to-end tests must run as root (ptrace of any process, clone3 set_tid)"
		exit 1
	fi
	if [[ ! -x $WL/reaper ]]; then
		echo "FAIL $E2E_NAME: $WL/reaper not found: build first (CKPT_BUILD=$CKPT_BUILD)"
		exit 1
	fi
	export CKPT_E2E_UNDER_REAPER=1
	exec "$WL/reaper" --timeout "${CKPT_E2E_TIMEOUT:-150}" -- bash "$0" "$@"
fi
REAPER_PID=$PPID
unset CKPT_FAULT

E2E_START_US=${EPOCHREALTIME/./}
T=$(mktemp -d "${CKPT_E2E_TMP:-/tmp}/ckpt-e2e.$E2E_NAME.XXXXXX") || exit 1
TRACKED=()   # roots of trees this test started or restored
DIAG=()      # files printed on failure
CALLS=0      # ckptctl invocations, numbered for their output files
RC=0 OUT='' ERR='' RESTORED_PID=''

# ---- messages ---------------------------------------------------------------

now_us() { echo "${EPOCHREALTIME/./}"; }

log()
{
	local ms=$(((${EPOCHREALTIME/./} - E2E_START_US) / 1000))
	printf '[%s %d.%03ds] %s\n' "$E2E_NAME" $((ms / 1000)) $((ms % 1000)) "$*"
}

diag_add() { DIAG+=("$@"); }

diagnostics()
{
	local f
	echo "---- diagnostics for $E2E_NAME (work dir $T) ----"
	for f in "${DIAG[@]}" "$T"/ckptctl.*.err; do
		[[ -s $f ]] || continue
		echo "---- $f (last 40 lines) ----"
		tail -n 40 "$f"
	done
	echo "---- processes under the test's reaper ($REAPER_PID) ----"
	local pids
	pids=$(tree_pids "$REAPER_PID" | tr '\n' ',')
	[[ -n $pids ]] && ps -o pid,ppid,pgid,sid,stat,wchan:20,comm,args -p "${pids%,}" 2>/dev/null
	echo "---- end of diagnostics ----"
}

fail()
{
	log "FAIL: $*"
	diagnostics
	exit 1
}

pass()
{
	log "PASS"
	exit 0
}

# at_exit CMD...: run CMD (one command line, eval'ed) when the test ends,
# after its processes are killed: for what outlives them (a SysV object...)
AT_EXIT=()
at_exit() { AT_EXIT+=("$*"); }

cleanup()
{
	local rc=$? root cmd
	trap - EXIT
	for root in "${TRACKED[@]}"; do
		kill_tree "$root"
	done
	drop_locks
	for cmd in "${AT_EXIT[@]}"; do
		eval "$cmd" || log "at exit: '$cmd' failed"
	done
	if [[ ${CKPT_E2E_KEEP:-0} == 1 ]]; then
		log "work directory kept: $T"
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT

# ---- nftables lock tables (TCP tests) -------------------------------------------

# A test adds the root pid of each tree whose dump may lock TCP connections:
# the lock tables (inet ckpt_PID_...) a failure left are deleted at exit.
LOCKED_ROOTS=()
# lock_tables PID: the lock tables of dumps of the tree rooted at PID (status 1: none)
lock_tables() { nft list tables 2>/dev/null | awk -v t="ckpt_$1_" '$2 == "inet" && index($3, t) == 1 { print $3 }' | grep .; }
drop_locks()
{
	local pid t
	for pid in "${LOCKED_ROOTS[@]}"; do
		for t in $(lock_tables "$pid"); do
			nft delete table inet "$t"
		done
	done
}

# ---- cgroups -------------------------------------------------------------------

# own_cgroups NAME: make cgroup NAME below the test's own in the v2
# hierarchy and in systemd's named v1 one, where they are mounted; their
# directories in CGROUPS_MADE, and added to OWN_CGROUPS (the test removes
# them, once empty)
OWN_CGROUPS=()
own_cgroups()
{
	local root mnt fstype opts sub d
	CGROUPS_MADE=()
	while read -r root mnt fstype opts; do
		[[ $root == / ]] || continue
		if [[ $fstype == cgroup2 ]]; then
			sub=$(sed -n 's/^0:://p' /proc/self/cgroup)
		elif [[ $fstype == cgroup && ,$opts, == *,name=systemd,* ]]; then
			sub=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup)
		else
			continue
		fi
		d=$mnt${sub%/}/$1
		mkdir "$d" || fail "cannot make the cgroup $d"
		OWN_CGROUPS+=("$d")
		CGROUPS_MADE+=("$d")
	done < <(sed -E 's/^[^ ]+ [^ ]+ [^ ]+ ([^ ]+) ([^ ]+) .* - ([^ ]+) [^ ]+ ([^ ]+)$/\1 \2 \3 \4/' /proc/self/mountinfo)
	((${#CGROUPS_MADE[@]})) || fail "no cgroup2 or name=systemd hierarchy mounted"
}

# ---- waiting ------------------------------------------------------------------

# poll_for SECS CMD...: run CMD every 50 ms until it succeeds; 1 on timeout.
poll_for()
{
	local secs=$1
	shift
	local end=$((${EPOCHREALTIME/./} + secs * 1000000))
	until "$@"; do
		((${EPOCHREALTIME/./} > end)) && return 1
		sleep 0.05
	done
	return 0
}

# wait_for SECS WHAT CMD...: like poll_for but fails the test on timeout.
wait_for()
{
	local secs=$1 what=$2
	shift 2
	poll_for "$secs" "$@" || fail "timed out after ${secs}s waiting for $what"
}

line_count() { local n=0; [[ -e $1 ]] && n=$(wc -l <"$1"); echo "$n"; }
has_lines() { (($(line_count "$1") >= $2)); }
file_has() { grep -qE -- "$2" "$1" 2>/dev/null; }

# wait_lines FILE N [SECS]: until FILE has at least N lines.
wait_lines() { wait_for "${3:-10}" "$2 lines in $1" has_lines "$1" "$2"; }
# wait_grep FILE REGEX [SECS]
wait_grep() { wait_for "${3:-10}" "/$2/ in $1" file_has "$1" "$2"; }
# wait_grep_after FILE LINES REGEX [SECS]: a line matching REGEX after the
# first LINES lines of FILE (what a program logged since a step)
lines_after_have() { tail -n +$(($2 + 1)) "$1" 2>/dev/null | grep -qE -- "$3"; }
# no_events_after LOG LINES WHAT: 3 more "ok" lines in LOG after line LINES
# and no "event" line among them (the inotify workloads' logs: a program
# that saw the dump's opens or reads of its files)
no_events_after()
{
	wait_for 10 "3 'ok' lines after $3" eval "(( \$(awk -v l=$2 'NR > l && \$1 == \"ok\" { c++ } END { print c + 0 }' '$1') >= 3 ))"
	if tail -n +$(($2 + 1)) "$1" | grep -q '^event'; then
		fail "$3: the program saw events it never caused: $(tail -n +$(($2 + 1)) "$1" | grep '^event' | sort | uniq -c | head -5)"
	fi
	return 0
}

# ctime_settled FILE: FILE's ctime is 2 s old or more (the dump takes no
# content sum of a file changed within the last second: file_ident.c)
ctime_settled() { (($(date +%s) - $(stat -c %Z "$1") >= 2)); }
wait_grep_after() { wait_for "${4:-10}" "/$3/ in $1 after line $2" lines_after_have "$1" "$2" "$3"; }

# same_fd_images ROOT A B: checkpoints A and B of the tree of ROOT share the
# same open file descriptions among the same fds: every task's (fd, file id)
# pairs and each file entry's (id, type, path) the same (positions and
# counts may differ: the tree ran between the two dumps)
same_fd_images()
{
	local img
	for img in "$2"/fds-*.img files.img; do
		img=${img##*/}
		"$CKPTCTL" show "$2" "$img" >"$T/same.a" 2>&1 || fail "ckptctl show $2 $img: $(cat "$T/same.a")"
		"$CKPTCTL" show "$3" "$img" >"$T/same.b" 2>&1 || fail "ckptctl show $3 $img: $(cat "$T/same.b")"
		python3 - "$T/same.a" "$T/same.b" <<-'PY' || fail "$img of $2 and $3 differ in what is shared"
			import json, sys
			def key(path):
			    es = json.load(open(path))["entries"]
			    return [(e.get("fd"), e.get("id"), e.get("type"), e.get("path")) for e in es]
			a, b = key(sys.argv[1]), key(sys.argv[2])
			if a != b:
			    print("\n".join(f"{x} | {y}" for x, y in zip(a, b) if x != y), file=sys.stderr)
			    sys.exit(1)
		PY
	done
}

# ---- processes ---------------------------------------------------------------

# proc_stat PID: sets S_COMM S_STATE S_PPID S_PGID S_SID; 1 if gone.
proc_stat()
{
	local line rest
	read -r line 2>/dev/null <"/proc/$1/stat" || return 1
	S_COMM=${line#*(}
	S_COMM=${S_COMM%)*}
	rest=${line##*) }
	read -r S_STATE S_PPID S_PGID S_SID _ <<<"$rest"
}

# tree_pids ROOT: ROOT and all its descendants, parents first.
tree_pids()
{
	local p=$1 f c
	[[ -d /proc/$p ]] || return 0
	echo "$p"
	for f in /proc/"$p"/task/*/children; do
		[[ -r $f ]] || continue
		for c in $(<"$f"); do
			tree_pids "$c"
		done
	done
}

# tree_snapshot ROOT [EXCLUDE_COMM_REGEX]: "pid ppid pgid sid comm" of every
# task, sorted by pid; the root's ppid is "-" (a restored tree is reparented).
tree_snapshot()
{
	local root=$1 exclude=${2:-} p
	for p in $(tree_pids "$root"); do
		proc_stat "$p" || continue
		[[ -n $exclude && $S_COMM =~ $exclude ]] && continue
		[[ $p == "$root" ]] && S_PPID=-
		echo "$p $S_PPID $S_PGID $S_SID $S_COMM"
	done | sort -n
}

# pids_snapshot ROOT PID...: "pid ppid pgid sid comm" of just these processes,
# the root's parent as "-" (a shell's child between its fork and its exec is
# "bash" too: comparing the members a workload names does not race with its
# loops)
pids_snapshot()
{
	local p root=$1
	for p in "$@"; do
		proc_stat "$p" || { echo "$p gone"; continue; }
		[[ $p == "$root" ]] && S_PPID=-
		echo "$p $S_PPID $S_PGID $S_SID $S_COMM"
	done | sort -n
}

# assert_same_pids BEFORE_FILE ROOT PID...: the same, for pids_snapshot
assert_same_pids()
{
	local before=$1
	shift
	pids_snapshot "$@" >"$T/pids.after"
	diff -u "$before" "$T/pids.after" || fail "restored processes differ from the dumped ones (pid ppid pgid sid comm)"
	log "same processes: $*"
}

# assert_same_tree BEFORE_FILE ROOT [EXCLUDE]: same pids, parents, groups, sessions.
assert_same_tree()
{
	local before=$1 root=$2 exclude=${3:-}
	tree_snapshot "$root" "$exclude" >"$T/tree.after"
	if ! diff -u "$before" "$T/tree.after" >"$T/tree.diff"; then
		cat "$T/tree.diff"
		fail "restored tree differs from the dumped one (pid ppid pgid sid comm)"
	fi
	log "same tree: $(wc -l <"$before") task(s): $(awk '{printf "%s%s", sep, $1; sep=","}' "$before")"
}

gone()
{
	local p
	for p in "$@"; do
		proc_stat "$p" || continue
		# A zombie child of this shell: reap it.
		[[ $S_STATE == Z ]] && wait "$p" 2>/dev/null
		[[ -e /proc/$p ]] && return 1
	done
	return 0
}

# assert_gone PID...: wait until none of the pids exists (not even a zombie).
assert_gone() { wait_for "${GONE_TIMEOUT:-10}" "pids $* to disappear" gone "$@"; }

# assert_running PID: alive, not a zombie, not stopped, not traced.
assert_running()
{
	local pid=$1 tracer
	proc_stat "$pid" || fail "pid $pid is not running"
	case $S_STATE in
	Z | X) fail "pid $pid ($S_COMM) is a zombie/dead (state $S_STATE)" ;;
	T | t) fail "pid $pid ($S_COMM) is stopped (state $S_STATE)" ;;
	esac
	tracer=$(awk '/^TracerPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	[[ ${tracer:-0} == 0 ]] || fail "pid $pid ($S_COMM) is still traced by $tracer"
}

# assert_tree_running ROOT [EXCLUDE_COMM_REGEX]: every task of the tree;
# a task other than the root that exits while we look is skipped.
assert_tree_running()
{
	local root=$1 exclude=${2:-} p
	assert_running "$root"
	for p in $(tree_pids "$root"); do
		proc_stat "$p" || continue
		[[ -n $exclude && $S_COMM =~ $exclude ]] && continue
		assert_running "$p"
	done
}

# session_pids SID: every process of session SID (the workloads and the
# restored trees are session leaders: their sid is their root's pid).
session_pids()
{
	local f line rest sid
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		rest=${line##*) }
		read -r _ _ _ sid _ <<<"$rest"
		[[ $sid == "$1" ]] && echo "${f//[^0-9]/}"
	done
}
session_gone() { [[ -z $(session_pids "$1") ]]; }

# kill_tree ROOT: SIGKILL the tree and its session until nothing is left: a
# shell may fork while we kill it, and a pid used as a process group or
# session id stays taken until the last member is reaped.
kill_tree()
{
	local root=$1 pids i
	for ((i = 0; i < 50; i++)); do
		pids=$({
			tree_pids "$root"
			session_pids "$root"
		} | sort -u)
		[[ -z $pids ]] && return 0
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.02
	done
	poll_for 5 gone "$root"
}

# assert_tree_gone ROOT: no process with pid or session ROOT left (after a dump).
assert_tree_gone()
{
	wait_for "${GONE_TIMEOUT:-10}" "tree $1 to disappear" eval "gone $1 && session_gone $1"
}

untrack() { local r=$1 i; for i in "${!TRACKED[@]}"; do [[ ${TRACKED[$i]} == "$r" ]] && unset 'TRACKED[i]'; done; }

ready_or_dead() { [[ -s $1 ]] || ! proc_stat "$2" || [[ $S_STATE == Z ]]; }

# start_workload VAR READY [--stdout FILE] -- CMD...: start CMD in its own
# session (no controlling terminal), stdin /dev/null, output to files; wait
# for the READY file (which holds the pid) and store the pid in VAR.
start_workload()
{
	local var=$1 ready=$2 out="$T/$1.stdout" pid
	shift 2
	if [[ $1 == --stdout ]]; then
		out=$2
		shift 2
	fi
	[[ $1 == -- ]] && shift
	diag_add "$out" "$T/$var.stderr"
	setsid "$@" </dev/null >"$out" 2>"$T/$var.stderr" &
	local spawned=$!
	disown "$spawned" # no "Killed" job notice when a dump kills it; still reaped
	# (setsid does not fork here: a background job is no group leader.)
	poll_for 20 ready_or_dead "$ready" "$spawned" || fail "workload '$*' did not create $ready within 20 s"
	[[ -s $ready ]] || fail "workload '$*' exited before creating $ready: $(tail -n 5 "$T/$var.stderr")"
	read -r pid <"$ready"
	[[ $pid =~ ^[0-9]+$ ]] || fail "bad pid '$pid' in $ready"
	TRACKED+=("$pid")
	printf -v "$var" %s "$pid"
	log "started $(basename "$1") as pid $pid"
}

# ---- ckptctl -------------------------------------------------------------------

# ckptctl_run ARGS...: run ckptctl (CKPT_FAULT from the caller's environment),
# output in $OUT / $ERR, exit code in $RC; returns RC.
ckptctl_run()
{
	CALLS=$((CALLS + 1))
	OUT=$T/ckptctl.$CALLS.out
	ERR=$T/ckptctl.$CALLS.err
	local t0=${EPOCHREALTIME/./}
	timeout -k 5 "${CKPTCTL_TIMEOUT:-60}" "$CKPTCTL" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	local ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
	log "${CKPT_FAULT:+CKPT_FAULT=$CKPT_FAULT }ckptctl $* -> exit $RC in ${ms} ms"
	return "$RC"
}

# ckpt_dump PID DIR [ARGS...]: must succeed.
ckpt_dump()
{
	local pid=$1 dir=$2
	shift 2
	if ! ckptctl_run dump "$pid" -D "$dir" "$@"; then
		cat "$ERR"
		fail "dump of pid $pid failed (exit $RC)"
	fi
	[[ -s $dir/inventory.img ]] || fail "dump succeeded but $dir/inventory.img is missing"
}

# paused_dump PID STEP ARGS...: ckptctl dump PID ARGS... in the background,
# paused at STEP (CKPT_PAUSE, docs/fault-injection.md); returns once it is
# paused there, the test acting while it waits. Output in $OUT / $ERR.
paused_dump()
{
	local pid=$1 step=$2
	shift 2
	rm -f "$T/go" "$T/go.paused"
	CALLS=$((CALLS + 1))
	OUT=$T/ckptctl.$CALLS.out ERR=$T/ckptctl.$CALLS.err
	CKPT_PAUSE=$step:$T/go timeout -k 5 120 "$CKPTCTL" dump "$pid" "$@" >"$OUT" 2>"$ERR" &
	DUMPER=$!
	wait_for 60 "the dump to pause at $step" test -e "$T/go.paused"
	log "dump paused at $step"
}

# release_dump: let the paused dump go on; its exit code in RC.
release_dump()
{
	touch "$T/go"
	wait "$DUMPER"
	RC=$?
	log "dump finished: exit $RC"
}

# paused_restore STEP ARGS...: ckptctl restore ARGS... in the background,
# paused at STEP (CKPT_PAUSE); returns once it is paused there, the test
# acting while it waits (a file swapped between its making and its use).
# Output in $OUT / $ERR.
paused_restore()
{
	local step=$1
	shift
	rm -f "$T/go" "$T/go.paused"
	CALLS=$((CALLS + 1))
	OUT=$T/ckptctl.$CALLS.out ERR=$T/ckptctl.$CALLS.err
	CKPT_PAUSE=$step:$T/go timeout -k 5 120 "$CKPTCTL" restore "$@" >"$OUT" 2>"$ERR" &
	RESTORER=$!
	wait_for 60 "the restore to pause at $step" test -e "$T/go.paused"
	log "restore paused at $step"
}

# release_restore: let the paused restore go on; its exit code in RC.
release_restore()
{
	touch "$T/go"
	wait "$RESTORER"
	RC=$?
	log "restore finished: exit $RC"
}

# swap_made HOW PATH OTHER: what someone else puts at PATH (removed first)
# while a restore that made it is paused there: a symlink to their FIFO
# OTHER (HOW symlink), a hard link of it (hardlink), or a FIFO (fifo) or a
# directory (dir) of their own at PATH, likely with the inode number just
# freed (OTHER then links to it: a hard link, a symlink for a directory).
# OTHER is made nobody's, mode 0604: made_untouched OTHER says it still is.
swap_made()
{
	local how=$1 path=$2 other=$3
	rm -rf "$path" "$other"
	case $how in
	symlink) mkfifo -m 0604 "$other" && ln -s "$other" "$path" ;;
	hardlink) mkfifo -m 0604 "$other" && ln "$other" "$path" ;;
	fifo) mkfifo -m 0604 "$path" && ln "$path" "$other" ;;
	dir) mkdir -m 0604 "$path" && ln -s "$path" "$other" ;;
	esac || fail "cannot put a $how at $path"
	chown 65534:65534 "$other" || fail "cannot chown $other"
}
made_untouched() { [[ $(stat -L -c %a:%u:%g "$1") == 604:65534:65534 ]]; }

# swap_refused WHAT PATH WANT TREE: the paused restore, let go after
# swap_made put something at PATH, must fail with WANT (a fixed string) in
# its error, leave nothing of TREE running, leave $T/other as it was and
# what was put at PATH where it is (then removed, with $T/other).
swap_refused()
{
	local what=$1 path=$2 want=$3 tree=$4
	release_restore
	((RC != 0)) || fail "$what: the restore succeeded"
	grep -qF -- "$want" "$ERR" || fail "$what: '$want' not in the error: $(cat "$ERR")"
	log "$what: $(grep -m 1 -F -- "$want" "$ERR" | cut -c1-200)"
	assert_restore_left_nothing "$tree"
	made_untouched "$T/other" || fail "$what: the restore changed what was put there: $(stat -L -c %a:%u:%g "$T/other")"
	[[ -e $path || -L $path ]] || fail "$what: what was put at $path was removed"
	rm -rf "$path" "$T/other"
}

# ckpt_restore DIR [ARGS...]: must succeed; sets RESTORED_PID from --json.
ckpt_restore()
{
	local dir=$1
	shift
	if ! ckptctl_run restore "$dir" --json "$@"; then
		cat "$ERR"
		fail "restore from $dir failed (exit $RC)"
	fi
	RESTORED_PID=$(json_get "$OUT" root_pid) || { cat "$OUT"; fail "restore --json printed no root_pid"; }
	[[ $(json_get "$OUT" status) == ok ]] || { cat "$OUT"; fail "restore --json status is not ok"; }
	TRACKED+=("$RESTORED_PID")
	log "restored root pid $RESTORED_PID"
}

# json_get FILE KEY: value of a top-level key of the (last) JSON object in FILE.
json_get()
{
	"$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith("{")]
if not lines:
    sys.exit(1)
v = json.loads(lines[-1]).get(sys.argv[2])
if v is None:
    sys.exit(1)
print(v)
EOF
}

# image_sums DIR: sha256 of every file of a checkpoint directory.
image_sums() { (cd "$1" && sha256sum -- * | sort -k2); }

# fault_steps dump|restore|kinds: the fault injection steps: string
# literals passed to ckpt_fault*() in the sources plus the `prefix-name`
# steps listed in docs/fault-injection.md; a fixed list of the main steps if
# none is found.
fault_steps()
{
	local prefix=$1 found
	if [[ $prefix == kinds ]]; then
		# Steps of the fd kinds (lib/kinds/*.c), dump or restore side.
		grep -hoE 'ckpt_fault(_inject)?\("[a-z0-9-]+"' "$CKPT_SRC"/lib/kinds/*.c 2>/dev/null |
			sed -E 's/.*\("([a-z0-9-]+)"/\1/' | sort -u | tr '\n' ' '
		return
	fi
	found=$({
		grep -rhoE "ckpt_fault(_inject)?\(\"$prefix-[a-z0-9-]+\"" \
			"$CKPT_SRC"/lib "$CKPT_SRC"/dump "$CKPT_SRC"/daemon "$CKPT_SRC"/restorer "$CKPT_SRC"/client 2>/dev/null |
			grep -oE "$prefix-[a-z0-9-]+"
		grep -hoE "\`$prefix-[a-z0-9-]+\`" "$CKPT_SRC"/docs/*.md 2>/dev/null | tr -d '`'
		# restorer/stages.c: one table entry {"name", stage_name, ...} per stage,
		# each injectable as restore-<name>
		[[ $prefix == restore ]] &&
			grep -oE '^[[:space:]]*\{"[a-z0-9-]+", stage_' "$CKPT_SRC"/restorer/stages.c 2>/dev/null |
			sed -E 's/.*\{"([a-z0-9-]+)".*/restore-\1/'
	} | sort -u)
	if [[ -z $found ]]; then
		case $prefix in
		dump) found="dump-seize dump-collect dump-memory dump-fds dump-write dump-commit dump-finish" ;;
		restore) found="restore-verify restore-pids restore-tree restore-fds restore-memory restore-creds restore-signals restore-resume" ;;
		esac
	fi
	echo $found
}

# ---- workload logs -------------------------------------------------------------

# check_memhog_log FILE [JUMP_LINE]: "start" then "ok N CSUM" lines, CSUM the
# start checksum, N growing by one from line to line, except at line
# JUMP_LINE (1-based) where N may jump (a restore of an older checkpoint).
# Prints the last iteration.
check_memhog_log()
{
	awk -v jump="${2:-0}" '
		NR == 1 { if ($1 != "start") { print "line 1 is not start: " $0; bad = 1; exit }
			  sum = $4; next }
		$1 != "ok" { print "line " NR ": " $0; bad = 1; exit }
		$3 != sum { print "line " NR ": checksum " $3 " != " sum; bad = 1; exit }
		NR != jump && prev != "" && $2 != prev + 1 { print "line " NR ": iteration " $2 " after " prev; bad = 1; exit }
		{ prev = $2 }
		END { if (!bad) print prev; exit bad }' "$1"
}

memhog_last_iter() { tail -n 1 "$1" | awk '$1 == "ok" { print $2 }'; }

require_file() { [[ -e $1 ]] || fail "$1 is missing"; }

log "work dir $T, build $CKPT_BUILD"
[[ -x $CKPTCTL ]] || fail "$CKPTCTL not found: build first"
[[ -x $WL/memhog ]] || fail "$WL/memhog not found: build first"

# no_stray_restorer: no ckpt-restore left anywhere under this test's reaper.
no_stray_restorer()
{
	local p
	for p in $(tree_pids "$REAPER_PID"); do
		proc_stat "$p" || continue
		[[ $S_COMM == ckpt-restore ]] && return 1
	done
	return 0
}

# assert_restore_left_nothing TREE_FILE: after a failed restore, no process
# holds any pid of the tree and no ckpt-restore is left.
assert_restore_left_nothing()
{
	local pids
	pids=$(awk '{print $1}' "$1")
	# shellcheck disable=SC2086
	poll_for 3 gone $pids || fail "a failed restore left processes behind: $(ps -o pid,ppid,stat,comm -p "$(echo $pids | tr ' ' ,)" | tail -n +2)"
	poll_for 3 no_stray_restorer || fail "a ckpt-restore process is still running after the failed restore"
}

# refused_forged IMG FILE REC PATH VALUE WANT TREE: a copy of the images IMG
# whose field PATH of record REC of FILE is VALUE (imgforge.py set, sums
# fixed) is refused by the restore with WANT (a fixed string) in the
# error, and nothing of TREE (a tree_snapshot) is left running.
refused_forged()
{
	local img=$1 file=$2 rec=$3 path=$4 value=$5 want=$6 tree=$7
	rm -rf "$T/forged" && cp -a "$img" "$T/forged" || fail "cannot copy $img"
	"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" set "$T/forged" "$file" "$rec" "$path" "$value" >/dev/null ||
		fail "imgforge set $file $rec $path $value failed"
	ckptctl_run restore "$T/forged" && fail "a restore with $file field $path = $value succeeded"
	grep -qF -- "$want" "$ERR" || fail "forged $file field $path = $value: '$want' not in the error: $(cat "$ERR")"
	assert_restore_left_nothing "$tree"
}

# reaper_strays: processes adopted by this test's reaper other than the test
# itself (a restored tree, or one left by a failed restore, lands there).
reaper_strays()
{
	local f c
	for f in /proc/"$REAPER_PID"/task/*/children; do
		for c in $(<"$f"); do
			[[ $c == "$$" ]] || echo "$c"
		done
	done
}
no_reaper_strays() { [[ -z $(reaper_strays) ]]; }
