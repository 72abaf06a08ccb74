#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/fuzz.sh TARGET|all SECONDS: run the libFuzzer harnesses of tests/fuzz/
# (image, dir, rpc, preserve; docs/testing.md "Fuzzing") for SECONDS each, one after
# the other. Builds build-fuzz/ (CC=clang, -DCKPT_FUZZ=ON) first if needed.
# The working corpus of a target is build-fuzz/fuzz-corpus/TARGET (kept from
# run to run, seeded from tests/fuzz/corpus/TARGET, which is only read);
# findings (crash-*, leak-*, timeout-*, oom-*) go to
# build-fuzz/fuzz-findings/TARGET/. Prints per target the executions, the
# coverage and the corpus, and exits non-zero on any finding.
#
# Environment: FUZZ_BUILD (default build-fuzz), FUZZ_RSS_MB (default 2048),
# FUZZ_ARGS (more libFuzzer options, e.g. -jobs=2).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
BUILD=${FUZZ_BUILD:-$SRC/build-fuzz}
ALL=(image dir rpc preserve)

usage() { echo "usage: bench/fuzz.sh image|dir|rpc|preserve|all SECONDS" >&2; exit 2; }
(($# == 2)) || usage
[[ $2 =~ ^[0-9]+$ ]] && (($2 > 0)) || usage
if [[ $1 == all ]]; then
	TARGETS=("${ALL[@]}")
else
	[[ " ${ALL[*]} " == *" $1 "* ]] || usage
	TARGETS=("$1")
fi
SECS=$2

# largest input per target: the seeds and a bit more; rpc: past the 64 KiB frame limit
declare -A MAX_LEN=([image]=16384 [dir]=65536 [rpc]=66000 [preserve]=8192)

if [[ ! -f $BUILD/CMakeCache.txt ]]; then
	command -v clang >/dev/null || { echo "fuzz: clang is missing (packaging/install-deps.sh)" >&2; exit 1; }
	CC=clang cmake -S "$SRC" -B "$BUILD" -DCKPT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
		{ echo "fuzz: cmake of $BUILD failed" >&2; exit 1; }
fi
make -C "$BUILD" -j"$(nproc)" fuzz >/dev/null || { echo "fuzz: build of $BUILD failed" >&2; exit 1; }

# scratch directories of harnesses that died (an abort skips their atexit)
clean_scratch() {
	local d pid
	for d in /dev/shm/ckpt-fuzz-*-*.*; do
		[[ -d $d ]] || continue
		pid=${d##*-}
		pid=${pid%%.*}
		[[ -e /proc/$pid ]] || rm -rf "$d"
	done
}

status=0
total=0
for t in "${TARGETS[@]}"; do
	corpus=$BUILD/fuzz-corpus/$t
	findings=$BUILD/fuzz-findings/$t
	log=$BUILD/fuzz-$t.log
	mkdir -p "$corpus" "$findings"
	before=$(find "$findings" -type f | wc -l)
	echo "fuzz $t: ${SECS} s (log $log)"
	t0=$SECONDS
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb="${FUZZ_RSS_MB:-2048}" -max_len="${MAX_LEN[$t]}" -print_final_stats=1 \
		-artifact_prefix="$findings/" ${FUZZ_ARGS:-} "$corpus" "$SRC/tests/fuzz/corpus/$t" \
		>"$log" 2>&1
	rc=$?
	took=$((SECONDS - t0))
	clean_scratch
	execs=$(awk '/^stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' "$log")
	rate=$(awk '/^stat::average_exec_per_sec:/ { n += $2 } END { print n + 0 }' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	units=$(find "$corpus" -type f | wc -l)
	bytes=$(du -sb "$corpus" | cut -f1)
	total=$((total + execs))
	printf 'fuzz %s: %s executions in %s s (%s/s), cov %s, ft %s, corpus %s units %s bytes\n' \
		"$t" "$execs" "$took" "$rate" "${cov:-?}" "${ft:-?}" "$units" "$bytes"
	new=$(($(find "$findings" -type f | wc -l) - before))
	if ((rc != 0 || new > 0)); then
		status=1
		echo "fuzz $t: FINDING (libFuzzer exit $rc, $new new file(s) in $findings):"
		grep -E 'ERROR: |SUMMARY: |runtime error: |fd leak|Test unit written' "$log" | head -20
	else
		echo "fuzz $t: no finding"
	fi
done
((${#TARGETS[@]} > 1)) && echo "fuzz: $total executions in all"
exit "$status"
