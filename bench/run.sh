#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/run.sh [MIB...]: dump and restore wall time and throughput of the
# memhog workload (touched anonymous memory: 256 MiB, 1 GiB, 2 GiB by
# default), images in /dev/shm, each against its limit measured in the same
# run: a full dump against the tmpfs write rate of the same amount right
# before it ("dd same"; the dump should reach 85% of it), the freeze of a
# --leave-running dump against a memcpy of that memory plus 50 ms, a restore
# against the first-touch rate of fresh anonymous memory; medians of
# CKPT_BENCH_RUNS (3) alternating runs. Prints one table, then restore --lazy
# of CKPT_BENCH_LAZY_MIB (2 GiB) against an eager restore, then the
# incremental row (the largest size).
# Needs root and a build (CKPT_BUILD, default build/). Cleans up after itself.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
BUILD=${CKPT_BUILD:-$SRC/build}
SIZES=("$@")
((${#SIZES[@]})) || SIZES=(256 1024 2048)

if [[ -z ${CKPT_BENCH_UNDER_REAPER:-} ]]; then
	(($(id -u) == 0)) || { echo "bench: run as root" >&2; exit 1; }
	[[ -x $BUILD/ckptctl && -x $BUILD/tests/workloads/memhog ]] ||
		{ echo "bench: build first (cmake -S . -B build && make -C build)" >&2; exit 1; }
	export CKPT_BENCH_UNDER_REAPER=1
	exec "$BUILD/tests/workloads/reaper" --quiet --timeout 900 -- bash "$0" "$@"
fi

CKPTCTL=$BUILD/ckptctl
W=$(mktemp -d /dev/shm/ckpt-bench.XXXXXX)
PID=
cleanup() { [[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
us() { echo "${EPOCHREALTIME/./}"; }
# rate MIB MICROSECONDS -> MiB/s; secs MICROSECONDS -> seconds
rate() { awk -v m="$1" -v t="$2" 'BEGIN { printf "%.0f", m / (t / 1e6) }'; }
secs() { awk -v t="$1" 'BEGIN { printf "%.3f", t / 1e6 }'; }
# frozen_limit MIB MIB_PER_S -> seconds: memcpy of that memory + 50 ms
frozen_limit() { awk -v m="$1" -v r="$2" 'BEGIN { printf "%.3f", m / r + 0.05 }'; }
ok() { awk "BEGIN { exit !($1) }" && echo ok || echo NO; }
gone() { [[ ! -e /proc/$1 ]]; }
wait_until() { local i; for ((i = 0; i < 600; i++)); do "$@" && return 0; sleep 0.05; done; return 1; }
lines() { wc -l <"$1"; }
more_lines() { (($(lines "$1") > $2)); }

# Machine limits, measured now (timings here are noisy: compare side by side).
dd if=/dev/zero of="$W/dd" bs=1M count=1024 conv=fdatasync 2>/dev/null # warm up
rm -f "$W/dd"
t0=$(us)
dd if=/dev/zero of="$W/dd" bs=1M count=1024 conv=fdatasync 2>/dev/null || die "dd to /dev/shm failed"
tmpfs_write=$(rate 1024 $(($(us) - t0)))
rm -f "$W/dd"
cc -O2 -o "$W/touch" bench/touch.c || die "cannot build bench/touch.c"
"$W/touch" 1024 >"$W/touch.out" || die "bench/touch.c failed"
read -r _ first_touch < <(grep first_touch "$W/touch.out")
read -r _ mapped < <(grep mapped "$W/touch.out")
read -r _ memcpy_rate < <(grep memcpy "$W/touch.out")

# Each row is the median of RUNS alternating runs on one program: dd, dump
# (killing), restore, dump --leave-running of the restored program, and
# again. The host backs this VM's memory lazily and takes back what it
# frees, so a dd or a dump meets memory it must back first at random;
# a ratio is taken within a run (dd right before its dump), then the median.
RUNS=${CKPT_BENCH_RUNS:-3}
# median N... -> the middle value (the lower middle of an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rows=()
row=0
for mib in "${SIZES[@]}"; do
	row=$((row + 1))
	log=$W/memhog-$row.log
	setsid "$BUILD/tests/workloads/memhog" "$mib" "$log" "$W/ready-$row" --interval 1000 \
		</dev/null >/dev/null 2>&1 &
	disown $!
	wait_until test -s "$W/ready-$row" || die "memhog $mib MiB did not start"
	read -r PID <"$W/ready-$row"
	wait_until more_lines "$log" 1 || die "memhog $mib MiB: no check line"
	dumps=() dds=() ratios=() restores=() frozens=()
	for ((run = 1; run <= RUNS; run++)); do
		# The limit for this run, in the same conditions: the same
		# amount written to tmpfs while the workload holds its memory,
		# both into memory the host has backed (bench/touch.c back).
		"$W/touch" back $((mib + mib / 4)) || die "touch back failed"
		t0=$(us)
		dd if=/dev/zero of="$W/dd" bs=1M count="$mib" conv=fdatasync 2>/dev/null || die "dd failed"
		dd_us=$(($(us) - t0))
		rm -f "$W/dd"

		t0=$(us)
		"$CKPTCTL" dump "$PID" -D "$W/img-$mib" >"$W/dump.out" 2>&1 ||
			die "dump $mib MiB failed: $(cat "$W/dump.out")"
		dump_us=$(($(us) - t0))
		img_mib=$(du -sm "$W/img-$mib" | cut -f1)
		wait_until gone "$PID" || die "pid $PID still there after dump"
		before=$(lines "$log")

		t0=$(us)
		"$CKPTCTL" restore "$W/img-$mib" >"$W/restore.out" 2>&1 ||
			die "restore $mib MiB failed: $(cat "$W/restore.out")"
		restore_us=$(($(us) - t0))
		wait_until more_lines "$log" "$before" || die "memhog $mib MiB did not run after restore"
		grep -q CORRUPT "$log" && die "memhog $mib MiB: memory corrupted after restore"
		rm -rf "$W/img-$mib"

		# The restored program again, dumped with --leave-running: how
		# long it was frozen, by the dump's own account.
		"$CKPTCTL" dump "$PID" -D "$W/lr-$mib" --leave-running --json >"$W/lr.out" 2>&1 ||
			die "leave-running dump $mib MiB failed: $(cat "$W/lr.out")"
		frozen=$(sed -n 's/.*"frozen_seconds":\([0-9.]*\).*/\1/p' "$W/lr.out")
		[[ -n $frozen ]] || die "no frozen_seconds in: $(cat "$W/lr.out")"
		gone "$PID" && die "memhog $mib MiB gone after a --leave-running dump"
		rm -rf "$W/lr-$mib"

		dumps+=("$dump_us") dds+=("$dd_us") restores+=("$restore_us") frozens+=("$frozen")
		ratios+=("$(awk -v d="$dd_us" -v t="$dump_us" 'BEGIN { printf "%.2f", d / t }')")
	done
	kill -KILL "$PID"
	wait_until gone "$PID"
	PID=

	dump_us=$(median "${dumps[@]}") dd_us=$(median "${dds[@]}")
	restore_us=$(median "${restores[@]}") frozen=$(median "${frozens[@]}")
	ratio=$(median "${ratios[@]}")
	each=$(printf '%s\n' "${ratios[@]}" | awk '{ printf "%s%.0f%%", (NR > 1 ? " " : ""), $1 * 100 }')
	limit=$(frozen_limit "$mib" "$memcpy_rate")
	rows+=("$(printf '| %6s MiB | %6s | %7s | %7s | %7s | %6s %-2s | %-14s | %7s | %7s | %-2s | %7s | %7s |' \
		"$mib" "$img_mib" "$(secs "$dump_us")" "$(rate "$mib" "$dump_us")" \
		"$(rate "$mib" "$dd_us")" "$(awk -v r="$ratio" 'BEGIN { printf "%.0f%%", 100 * r }')" \
		"$(ok "$ratio >= 0.85")" "$each" \
		"$frozen" "$limit" "$(ok "$frozen <= $limit")" \
		"$(secs "$restore_us")" "$(rate "$mib" "$restore_us")")")
done

# restore --lazy against an eager restore of the same images: time until
# ckptctl returns (the tree runs) and until the pager has exited (every page
# in), and the fixed cost of restoring a 1 MiB program. Printed, never asserted.
LAZY_MIB=${CKPT_BENCH_LAZY_MIB:-2048}
start_memhog()
{
	local mib=$1 tag=$2
	setsid "$BUILD/tests/workloads/memhog" "$mib" "$W/$tag.log" "$W/$tag.ready" --interval 1000 \
		</dev/null >/dev/null 2>&1 &
	disown $!
	wait_until test -s "$W/$tag.ready" || die "memhog $mib MiB did not start"
	read -r PID <"$W/$tag.ready"
	wait_until more_lines "$W/$tag.log" 1 || die "memhog $mib MiB: no check line"
}
# restore_timed DIR [ARGS]: sets run_us (until ckptctl returns)
restore_timed()
{
	local dir=$1 t0
	shift
	t0=$(us)
	"$CKPTCTL" restore "$dir" --json "$@" >"$W/restore.out" 2>&1 || die "restore $* failed: $(cat "$W/restore.out")"
	run_us=$(($(us) - t0))
	restore_t0=$t0
}
start_memhog 1 small
"$CKPTCTL" dump "$PID" -D "$W/img-small" >/dev/null 2>&1 || die "dump of 1 MiB failed"
wait_until gone "$PID"
restore_timed "$W/img-small"
small_us=$run_us
kill -KILL "$PID"; wait_until gone "$PID"
start_memhog "$LAZY_MIB" lazy
"$CKPTCTL" dump "$PID" -D "$W/img-lazy" >/dev/null 2>&1 || die "dump of $LAZY_MIB MiB failed"
wait_until gone "$PID"
restore_timed "$W/img-lazy"
eager_us=$run_us
"$CKPTCTL" dump "$PID" -D "$W/img-lazy2" >/dev/null 2>&1 || die "second dump of $LAZY_MIB MiB failed"
wait_until gone "$PID"
restore_timed "$W/img-lazy2" --lazy
lazy_run_us=$run_us
pager=$(sed -n 's/.*"pager_pid":\([0-9]*\).*/\1/p' "$W/restore.out")
[[ -n $pager ]] || die "restore --lazy printed no pager_pid: $(cat "$W/restore.out")"
# (its exit through a pidfd: a loop of sleeps forks one every few ms, each
# several ms of CPU here, against the pager timed)
"$W/touch" exited "$pager" || die "the pager $pager did not exit within 60 s"
lazy_all_us=$(($(us) - restore_t0))
before=$(lines "$W/lazy.log")
wait_until more_lines "$W/lazy.log" "$before" || die "memhog did not run after restore --lazy"
grep -q CORRUPT "$W/lazy.log" && die "memhog: memory corrupted after restore --lazy"
kill -KILL "$PID"; wait_until gone "$PID"
PID=
rm -rf "$W/img-small" "$W/img-lazy" "$W/img-lazy2"
lazy_row=$(printf '| %6s MiB | %7s | %7s | %7s | %7s | %-2s | %7s | %7s | %-2s |' \
	"$LAZY_MIB" "$(secs $eager_us)" "$(secs $small_us)" "$(secs $lazy_run_us)" \
	"$(awk -v s="$small_us" 'BEGIN { printf "%.3f", s / 1e6 + 0.05 }')" \
	"$(ok "$lazy_run_us <= $small_us + 50000")" "$(secs $lazy_all_us)" "$(secs $eager_us)" \
	"$(ok "$lazy_all_us <= $eager_us")")
# Incremental (docs/incremental.md): a task writing 1% of its memory per
# second (bench/dirty.c), the largest size. Full: frozen_seconds of a
# killing dump. Incremental: a --pre-dump, 1 s later the final dump with
# --parent (killing); its frozen_seconds. Printed, never asserted.
cc -O2 -o "$W/dirty" bench/dirty.c || die "cannot build bench/dirty.c"
imib=${SIZES[-1]}
incr_frozen() # MODE -> frozen seconds of the dump (full: one dump; incr: pre-dump, 1 s, final)
{
	rm -f "$W/dirty.ready"
	setsid "$W/dirty" "$imib" 1 "$W/dirty.ready" </dev/null >/dev/null 2>&1 &
	wait_until test -s "$W/dirty.ready" || die "dirty $imib MiB did not start"
	PID=$(cat "$W/dirty.ready")
	if [[ $1 == incr ]]; then
		# backed for both dumps' images before the first: done between
		# them, after the pre-dump's 2 GiB, it took seconds, and the final
		# dump came 4-6 s after the pre-dump instead of one
		"$W/touch" back $((2 * imib + imib / 4)) || die "touch back failed"
		"$CKPTCTL" dump "$PID" -D "$W/ipre" --pre-dump --json >"$W/ipre.out" 2>&1 ||
			die "pre-dump failed: $(cat "$W/ipre.out")"
		sleep 1
		"$CKPTCTL" dump "$PID" -D "$W/ifin" --parent "$W/ipre" --json >"$W/ifin.out" 2>&1 ||
			die "incremental dump failed: $(cat "$W/ifin.out")"
		sed -n 's/.*"frozen_seconds":\([0-9.]*\).*"pages_saved":\([0-9]*\).*/\1 \2/p' "$W/ifin.out"
	else
		"$W/touch" back $((imib + imib / 4)) || die "touch back failed"
		"$CKPTCTL" dump "$PID" -D "$W/ifull" --json >"$W/ifull.out" 2>&1 ||
			die "full dump failed: $(cat "$W/ifull.out")"
		sed -n 's/.*"frozen_seconds":\([0-9.]*\).*/\1 0/p' "$W/ifull.out"
	fi
	wait "$PID" 2>/dev/null # killed by the dump: reaped here
	PID=
	rm -rf "$W/ipre" "$W/ifin" "$W/ifull"
}
# RUNS pairs, alternating; the ratio is taken within a pair, then the median
fulls=() incrs=() saveds=() iratios=()
for ((run = 1; run <= RUNS; run++)); do
	read -r full_frozen _ < <(incr_frozen full)
	read -r incr_fz incr_saved < <(incr_frozen incr)
	[[ -n $full_frozen && -n $incr_fz ]] || die "no frozen_seconds from the incremental row"
	fulls+=("$full_frozen") incrs+=("$incr_fz") saveds+=("$incr_saved")
	iratios+=("$(awk -v i="$incr_fz" -v f="$full_frozen" 'BEGIN { printf "%.3f", i / f }')")
done
full_frozen=$(median "${fulls[@]}") incr_fz=$(median "${incrs[@]}")
incr_saved=$(median "${saveds[@]}") incr_ratio=$(median "${iratios[@]}")
incr_each=$(printf '%s\n' "${iratios[@]}" | awk '{ printf "%s%.0f%%", (NR > 1 ? " " : ""), $1 * 100 }')

echo
echo "ckpt benchmark: memhog (touched anonymous memory), images in /dev/shm, $(nproc) CPUs, $(uname -r)"
echo
echo "| memory     | images MiB | dump s | dump MiB/s | dd same MiB/s | dump/dd (limit 85%) | dump/dd each run | leave-running frozen s | limit s | ok | restore s | restore MiB/s |"
echo "|------------|-----:|------:|------:|------:|------:|----------------|------:|------:|----|------:|------:|"
for r in "${rows[@]}"; do
	echo "$r"
done
echo
echo "limits measured in this run: tmpfs write $tmpfs_write MiB/s (dd 1 GiB, fdatasync, warmed up);"
echo "memcpy $memcpy_rate MiB/s (1 GiB, present pages); first touch of fresh memory $first_touch MiB/s;"
echo "memset into present pages $mapped MiB/s."
echo
echo "dump: a full dump (the program killed), from ckptctl's start to its return."
echo "dd same: dd of the same amount to /dev/shm right before the dump, while the"
echo "workload holds its memory: the tmpfs write limit in the dump's own conditions"
echo "(both into memory the host has backed: bench/touch.c back, right before the dd);"
echo "the dump should reach 85% of it. leave-running frozen: frozen_seconds of"
echo "ckptctl dump --leave-running --json on the restored program; its limit is a"
echo "memcpy of that memory + 50 ms. Each figure is the median of $RUNS alternating"
echo "runs on one program (dd, dump, restore, leave-running dump; CKPT_BENCH_RUNS);"
echo "dump/dd is the median of each run's ratio, all of which are listed."
echo
echo "restore --lazy (the tree runs before its memory is in; a pager brings it in):"
echo
echo "| memory     | eager restore s | 1 MiB restore s | lazy: runs after s | limit s | ok | lazy: all in after s | limit s | ok |"
echo "|------------|------:|------:|------:|------:|----|------:|------:|----|"
echo "$lazy_row"
echo
echo "runs after: from ckptctl restore --lazy to its return; its limit is the 1 MiB"
echo "restore + 50 ms. all in after: until the pager has exited; its limit is the"
echo "eager restore of the same images."
echo "| incremental, $imib MiB writing 1%/s | full dump frozen s | final dump frozen s (--pre-dump 1 s before) | pages saved | ratio (target <= 5%) | ok | ratio each run |"
echo "|---|------:|------:|------:|------:|----|----|"
printf '| %s MiB | %s | %s | %s | %s | %s | %s |\n' "$imib" "$full_frozen" "$incr_fz" "$incr_saved" \
	"$(awk -v r="$incr_ratio" 'BEGIN { printf "%.0f%%", 100 * r }')" "$(ok "$incr_ratio <= 0.05")" \
	"$incr_each"
echo
echo "full dump frozen: frozen_seconds of a killing dump of bench/dirty.c; final dump:"
echo "the same program, --pre-dump, then 1 s later a killing dump with --parent."
echo "Medians of $RUNS alternating pairs; the ratio is taken within each pair."
