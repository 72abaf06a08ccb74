#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/scale.sh [COUNT...]: how dump and restore time grows with the
# number of threads, processes, fds, mappings and processes sharing one
# file (bench/scale.c holds them; 100, 1,000 and 10,000 of each by
# default). Each row: the killing dump's and the restore's wall time, the
# time per item (t(N) / N, fixed costs included, so it falls at first), and
# the cost of the items added since the row before against the cost per item
# up to it ("growth": about 1 when the time is linear in the count, above 2
# when it grows faster: the aim of issue 12 is flat from 100 to 10,000).
# The restore starts once the dumped pids are free (PID 1 reaps the killed
# tree here about once a second). Timings on shared machines are noisy:
# compare within one run. Needs root and a build (CKPT_BUILD, default build/).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
BUILD=${CKPT_BUILD:-$SRC/build}
COUNTS=("$@")
((${#COUNTS[@]})) || COUNTS=(100 1000 10000)
KINDS=(${CKPT_SCALE_KINDS:-threads procs fds maps shared})

if [[ -z ${CKPT_BENCH_UNDER_REAPER:-} ]]; then
	(($(id -u) == 0)) || { echo "bench: run as root" >&2; exit 1; }
	[[ -x $BUILD/ckptctl && -x $BUILD/tests/workloads/reaper ]] ||
		{ echo "bench: build first (cmake -S . -B build && make -C build)" >&2; exit 1; }
	export CKPT_BENCH_UNDER_REAPER=1
	exec "$BUILD/tests/workloads/reaper" --quiet --timeout 3000 -- bash "$0" "$@"
fi

CKPTCTL=$BUILD/ckptctl
W=$(mktemp -d /dev/shm/ckpt-scale.XXXXXX)
PID=
cleanup() { [[ -n $PID ]] && kill -KILL -- "-$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
us() { echo "${EPOCHREALTIME/./}"; }
gone() { [[ ! -e /proc/$1 ]]; }
# no process of session $1 left, zombies included: the killed tree's
# children are reaped by PID 1, about once a second here
session_gone() { ! pgrep -s "$1" >/dev/null; }
wait_until() { local i; for ((i = 0; i < 2400; i++)); do "$@" && return 0; sleep 0.05; done; return 1; }
# per_item T N -> microseconds per item
per_item() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.1f", t / n }'; }
# growth T N T_PREV N_PREV -> (T - T_PREV) / (N - N_PREV) against T_PREV / N_PREV
growth() {
	awk -v t="$1" -v n="$2" -v p="$3" -v m="$4" \
		'BEGIN { if (m <= 0 || p <= 0) print "-"; else printf "%.2f", ((t - p) / (n - m)) / (p / m) }'
}
ms() { awk -v t="$1" 'BEGIN { printf "%.0f", t / 1000 }'; }
# against T N T0 N0 -> "R ok" / "R NO": the time per item against that of the
# kind's first row, the issue's limit 2x (issue 12: flat from 100 to 10,000)
against() {
	awk -v t="$1" -v n="$2" -v p="$3" -v m="$4" \
		'BEGIN { if (m <= 0 || p <= 0) { print "-"; exit } r = (t / n) / (p / m); printf "%.2f %s", r, (r <= 2 ? "ok" : "NO") }'
}

cc -O2 -pthread -o "$W/scale" bench/scale.c || die "cannot build bench/scale.c"
ulimit -n "$(ulimit -Hn)"

# one KIND N: sets DUMP_US, RESTORE_US; a failed dump or restore returns 1
# with FAILED saying why (the table shows it, the next rows still run)
one()
{
	local kind=$1 n=$2 img=$W/img-$1-$2 r=0
	rm -f "$W/ready"
	setsid "$W/scale" "$kind" "$n" "$W/ready" </dev/null >/dev/null 2>"$W/scale.err" &
	disown $!
	wait_until test -s "$W/ready" || die "$kind $n did not start: $(cat "$W/scale.err")"
	read -r PID <"$W/ready"
	local t0=$(us)
	if ! "$CKPTCTL" dump "$PID" -D "$img" >"$W/dump.out" 2>&1; then
		FAILED="dump: $(tail -n 1 "$W/dump.out")"
		r=1
	else
		DUMP_US=$(($(us) - t0))
		wait_until gone "$PID" || die "$kind $n: pid $PID still there after the dump"
		# the restore's clock starts once the dumped pids are free: until
		# then ckptctl restore waits for PID 1 (up to 1.5 s), not ours
		wait_until session_gone "$PID" || die "$kind $n: processes of session $PID still there"
		t0=$(us)
		if ! "$CKPTCTL" restore "$img" >"$W/restore.out" 2>&1; then
			FAILED="restore: $(tail -n 1 "$W/restore.out")"
			r=1
		else
			RESTORE_US=$(($(us) - t0))
			gone "$PID" && die "$kind $n: not running after the restore"
		fi
	fi
	kill -KILL -- "-$PID" 2>/dev/null
	wait_until gone "$PID"
	PID=
	rm -rf "$img"
	return "$r"
}

rows=()
for kind in "${KINDS[@]}"; do
	dp=0 rp=0 np=0 d0=0 r0=0 n0=0
	for n in "${COUNTS[@]}"; do
		if ! one "$kind" "$n"; then
			rows+=("$(printf '| %-8s | %6s | failed: %s |' "$kind" "$n" "$FAILED")")
			dp=0 rp=0 np=0
			continue
		fi
		((n0)) || d0=$DUMP_US r0=$RESTORE_US n0=$n
		vd=- vr=-
		((n != n0)) && vd=$(against "$DUMP_US" "$n" "$d0" "$n0") vr=$(against "$RESTORE_US" "$n" "$r0" "$n0")
		rows+=("$(printf '| %-8s | %6s | %8s | %8s | %6s | %9s | %8s | %8s | %6s | %9s |' "$kind" "$n" \
			"$(ms "$DUMP_US")" "$(per_item "$DUMP_US" "$n")" "$(growth "$DUMP_US" "$n" "$dp" "$np")" "$vd" \
			"$(ms "$RESTORE_US")" "$(per_item "$RESTORE_US" "$n")" \
			"$(growth "$RESTORE_US" "$n" "$rp" "$np")" "$vr")")
		dp=$DUMP_US rp=$RESTORE_US np=$n
	done
done

echo
echo "ckpt scale: $(nproc) CPUs, $(uname -r); images in /dev/shm"
echo
echo "| kind     |  count | dump ms | dump us/item | growth | vs first (limit 2x) | restore ms | restore us/item | growth | vs first (limit 2x) |"
echo "|----------|-------:|--------:|---------:|-------:|----------:|---------:|---------:|-------:|----------:|"
for r in "${rows[@]}"; do
	echo "$r"
done
echo
echo "us/item: time / count (fixed costs included). growth: the time per item added"
echo "since the row before, against the time per item of that row: about 1 or below"
echo "when the time is linear in the count, above 2 when it grows faster. vs first:"
echo "the time per item against that of the kind's first row (issue 12: within 2x)."
