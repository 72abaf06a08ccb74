#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/criu.sh: ckpt against CRIU on the same programs, side by side (the
# measurements issue 12 was filed with: its aim is at most 0.8 of CRIU's
# time). CRIU from CKPT_CRIU, else built by bench/build-criu.sh (from
# Debian's source; once, kept in /var/tmp/ckpt-criu).
#
# Memory rows (CKPT_CRIU_SIZES, default "256 1024 2048" MiB): bench/ticker.c
# holding that much pseudo-random memory. For each tool, on a fresh program
# each time: the freeze of a --leave-running dump as the program sees it
# (its longest gap between 1 ms wake-ups while the dump ran), a killing
# dump's wall time and the restore's (until the tool returns with the tree
# running: ckptctl restore, criu restore -d). Scale rows
# (CKPT_CRIU_SCALE, default "threads:1000 procs:200 fds:9000 maps:20000",
# bench/scale.c): the killing dump's and the restore's wall time. Images in
# /dev/shm. Medians of CKPT_BENCH_RUNS (3) runs, the tools alternating
# (which goes first alternates too). Prints one table; never asserts.
# Needs root and a build (CKPT_BUILD, default build/).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
BUILD=${CKPT_BUILD:-$SRC/build}

if [[ -z ${CKPT_BENCH_UNDER_REAPER:-} ]]; then
	(($(id -u) == 0)) || { echo "bench: run as root" >&2; exit 1; }
	[[ -x $BUILD/ckptctl && -x $BUILD/tests/workloads/reaper ]] ||
		{ echo "bench: build first (cmake -S . -B build && make -C build)" >&2; exit 1; }
	if [[ -z ${CKPT_CRIU:-} ]]; then
		CKPT_CRIU=$(bash "$SRC/bench/build-criu.sh") || { echo "bench: no CRIU" >&2; exit 1; }
	fi
	export CKPT_CRIU CKPT_BENCH_UNDER_REAPER=1
	exec "$BUILD/tests/workloads/reaper" --quiet --timeout 3000 -- bash "$0" "$@"
fi

CKPTCTL=$BUILD/ckptctl
CRIU=$CKPT_CRIU
RUNS=${CKPT_BENCH_RUNS:-3}
read -r -a SIZES <<<"${CKPT_CRIU_SIZES:-256 1024 2048}"
read -r -a SCALE <<<"${CKPT_CRIU_SCALE:-threads:1000 procs:200 fds:9000 maps:20000}"
W=$(mktemp -d /dev/shm/ckpt-criu.XXXXXX)
PID=
cleanup() { [[ -n $PID ]] && kill -KILL -- "-$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
us() { echo "${EPOCHREALTIME/./}"; }
gone() { [[ ! -e /proc/$1 ]]; }
session_gone() { ! pgrep -s "$1" >/dev/null; }
wait_until() { local i; for ((i = 0; i < 2400; i++)); do "$@" && return 0; sleep 0.05; done; return 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs() { awk -v t="$1" 'BEGIN { printf "%.3f", t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
ok() { awk -v r="$1" 'BEGIN { exit !(r != "-" && r <= 0.8) }' && echo ok || echo NO; }

cc -O2 -o "$W/ticker" bench/ticker.c || die "cannot build bench/ticker.c"
cc -O2 -pthread -o "$W/scale" bench/scale.c || die "cannot build bench/scale.c"
cc -O2 -o "$W/touch" bench/touch.c || die "cannot build bench/touch.c"
ulimit -n "$(ulimit -Hn)"
"$CRIU" --version | head -n 1 | grep -q . || die "$CRIU does not run"

# dump TOOL PID DIR [--leave-running]; restore TOOL DIR: 0 or the tool's failure
dump()
{
	local tool=$1 pid=$2 dir=$3
	shift 3
	mkdir -p "$dir"
	if [[ $tool == ckpt ]]; then
		"$CKPTCTL" dump "$pid" -D "$dir" "$@" >"$W/out" 2>&1
	else
		"$CRIU" dump -t "$pid" -D "$dir" -o dump.log "$@" >"$W/out" 2>&1
	fi || die "$tool dump of $pid failed: $(tail -n 3 "$W/out" "$dir/dump.log" 2>/dev/null)"
}
restore()
{
	local tool=$1 dir=$2
	if [[ $tool == ckpt ]]; then
		"$CKPTCTL" restore "$dir" >"$W/out" 2>&1
	else
		"$CRIU" restore -D "$dir" -d -o restore.log >"$W/out" 2>&1
	fi || die "$tool restore failed: $(tail -n 3 "$W/out" "$dir/restore.log" 2>/dev/null)"
}
# start CMD...: runs it in a session of its own, PID from its ready file
start()
{
	rm -f "$W/ready"
	setsid "$@" </dev/null >/dev/null 2>"$W/start.err" &
	disown $!
	wait_until test -s "$W/ready" || die "$* did not start: $(cat "$W/start.err")"
	read -r PID <"$W/ready"
}
# the killed tree gone, zombies included, before a restore's clock starts
finish() { wait_until gone "$PID" && wait_until session_gone "$PID" || die "pid $PID still there"; }
stop() { kill -KILL -- "-$PID" 2>/dev/null; wait_until gone "$PID"; PID=; rm -rf "$W/img"; }

# dump_restore TOOL WHAT: the program PID started, a killing dump and the
# restore, timed (DUMP_US, RESTORE_US); then the restored program is stopped
dump_restore()
{
	local tool=$1 t0
	t0=$(us)
	dump "$tool" "$PID" "$W/img"
	DUMP_US=$(($(us) - t0))
	finish
	t0=$(us)
	restore "$tool" "$W/img"
	RESTORE_US=$(($(us) - t0))
	gone "$PID" && die "$tool: $2 not running after its restore"
	stop
}

# memory TOOL MIB: sets FROZEN_US DUMP_US RESTORE_US
memory()
{
	local tool=$1 mib=$2 before t0
	: >"$W/gaps"
	start "$W/ticker" "$mib" "$W/ready" "$W/gaps"
	# both tools write into memory the host has backed (bench/run.sh)
	"$W/touch" back $((mib + mib / 4)) || die "touch back failed"
	sleep 0.2
	before=$(wc -l <"$W/gaps")
	dump "$tool" "$PID" "$W/lr" --leave-running
	sleep 0.05
	FROZEN_US=$(tail -n +"$((before + 1))" "$W/gaps" | awk '$2 > m { m = $2 } END { print m + 0 }')
	rm -rf "$W/lr"
	gone "$PID" && die "$tool: the program is gone after a --leave-running dump"
	"$W/touch" back $((mib + mib / 4)) || die "touch back failed"
	dump_restore "$tool" "$mib MiB"
}

# scale TOOL KIND N: sets DUMP_US RESTORE_US
scale()
{
	local tool=$1 kind=$2 n=$3
	start "$W/scale" "$kind" "$n" "$W/ready"
	dump_restore "$tool" "$kind $n"
}

rows=()
# row LABEL FROZEN(0/1) then the arrays fz_ckpt dp_ckpt rs_ckpt fz_criu dp_criu rs_criu
row()
{
	local label=$1 frozen=$2 fa fb da db ra rb
	da=$(median "${dp_ckpt[@]}") db=$(median "${dp_criu[@]}")
	ra=$(median "${rs_ckpt[@]}") rb=$(median "${rs_criu[@]}")
	if ((frozen)); then
		fa=$(median "${fz_ckpt[@]}") fb=$(median "${fz_criu[@]}")
		fcol=$(printf '%7s | %7s | %5s' "$(secs "$fa")" "$(secs "$fb")" "$(ratio "$fa" "$fb")")
	else
		fcol=$(printf '%7s | %7s | %5s' - - -)
	fi
	rows+=("$(printf '| %-14s | %s | %7s | %7s | %5s %-2s | %7s | %7s | %5s %-2s |' "$label" "$fcol" \
		"$(secs "$da")" "$(secs "$db")" "$(ratio "$da" "$db")" "$(ok "$(ratio "$da" "$db")")" \
		"$(secs "$ra")" "$(secs "$rb")" "$(ratio "$ra" "$rb")" "$(ok "$(ratio "$ra" "$rb")")")")
}

for mib in "${SIZES[@]}"; do
	fz_ckpt=() dp_ckpt=() rs_ckpt=() fz_criu=() dp_criu=() rs_criu=()
	for ((run = 1; run <= RUNS; run++)); do
		order=(ckpt criu)
		((run % 2)) || order=(criu ckpt)
		for tool in "${order[@]}"; do
			memory "$tool" "$mib"
			if [[ $tool == ckpt ]]; then
				fz_ckpt+=("$FROZEN_US") dp_ckpt+=("$DUMP_US") rs_ckpt+=("$RESTORE_US")
			else
				fz_criu+=("$FROZEN_US") dp_criu+=("$DUMP_US") rs_criu+=("$RESTORE_US")
			fi
		done
	done
	row "$mib MiB" 1
done
for s in "${SCALE[@]}"; do
	kind=${s%%:*} n=${s#*:}
	dp_ckpt=() rs_ckpt=() dp_criu=() rs_criu=()
	for ((run = 1; run <= RUNS; run++)); do
		order=(ckpt criu)
		((run % 2)) || order=(criu ckpt)
		for tool in "${order[@]}"; do
			scale "$tool" "$kind" "$n"
			if [[ $tool == ckpt ]]; then
				dp_ckpt+=("$DUMP_US") rs_ckpt+=("$RESTORE_US")
			else
				dp_criu+=("$DUMP_US") rs_criu+=("$RESTORE_US")
			fi
		done
	done
	row "$n $kind" 0
done

echo
echo "ckpt against $("$CRIU" --version | head -n 1) ($CRIU): $(nproc) CPUs, $(uname -r); images in /dev/shm"
echo
echo "| program        | frozen s ckpt | CRIU | ckpt/CRIU | dump s ckpt | CRIU | ckpt/CRIU (aim 0.8) | restore s ckpt | CRIU | ckpt/CRIU (aim 0.8) |"
echo "|----------------|------:|------:|------:|------:|------:|------:|------:|------:|------:|"
for r in "${rows[@]}"; do
	echo "$r"
done
echo
echo "frozen: the longest gap the program (bench/ticker.c, waking every 1 ms) saw"
echo "while a --leave-running dump ran. dump: a killing dump, from the tool's start"
echo "to its return. restore: from the tool's start to its return with the tree"
echo "running (criu restore -d). Medians of $RUNS runs, the tools alternating."
