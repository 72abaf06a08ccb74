#!/bin/bash
# SPDX-License-Identifier: MIT
# Build and test everything: dependencies, build/ (unit + end-to-end tests),
# build-asan/ (unit tests under AddressSanitizer and UBSan; end-to-end
# tests are not registered there) and build-fuzz/ (each libFuzzer target
# for 60 s, bench/fuzz.sh). Exit non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
JOBS=$(nproc)

step() { printf '\n==== %s ====\n' "$*"; }

step "dependencies"
bash packaging/install-deps.sh || exit 1

status=0
results=()
for variant in build build-asan; do
	# warnings are errors here (CKPT_WERROR), not in packagers' builds
	flags=(-DCKPT_WERROR=ON)
	[[ $variant == build-asan ]] && flags+=(-DCKPT_SANITIZE=ON)
	step "configure and build $variant"
	if ! cmake -S . -B "$variant" "${flags[@]}" || ! make -C "$variant" -j"$JOBS"; then
		results+=("$variant: BUILD FAILED")
		status=1
		continue
	fi
	step "ctest in $variant"
	if (cd "$variant" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} ctest --output-on-failure --timeout 600); then
		results+=("$variant: all tests passed")
	else
		results+=("$variant: TESTS FAILED")
		status=1
	fi
done

# The fuzz targets (tests/fuzz/, bench/fuzz.sh) for 60 s each: any crash,
# leak, hang or sanitizer report in the image reader, the verifier or the
# rpc receiver fails the run (FUZZ_SECONDS changes the time, 0 skips).
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
if ((FUZZ_SECONDS > 0)); then
	step "fuzz targets, ${FUZZ_SECONDS} s each"
	if bash bench/fuzz.sh all "$FUZZ_SECONDS"; then
		results+=("fuzz: no finding in ${FUZZ_SECONDS} s per target")
	else
		results+=("fuzz: FINDING or build failure (see above, build-fuzz/fuzz-findings/)")
		status=1
	fi
fi

step "summary"
printf '%s\n' "${results[@]}"
# Nothing a test started may outlive the run.
if pgrep -x ckpt-restore >/dev/null; then
	echo "warning: a ckpt-restore process is still running:"
	pgrep -a -x ckpt-restore
fi
exit "$status"
