#!/bin/bash
# SPDX-License-Identifier: MIT
# libckpt as a user of the installed library sees it: only ckpt_* symbols
# exported, the header usable from C and C++, an install (component libckpt)
# whose pkg-config file builds the example, and the example's error when no
# ckptd listens. Needs no daemon and no root.
set -euo pipefail

: "${CKPT_BUILD:?set CKPT_BUILD to the build directory}"
: "${CKPT_SRC:?set CKPT_SRC to the source directory}"

tmp=$(mktemp -d /tmp/test_libckpt.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# 1. exports: the API and nothing of ckpt-core or protobuf-c
lib=$CKPT_BUILD/libckpt.so
others=$(nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | grep -v '^ckpt_' || true)
if [ -z "$others" ]; then ok "libckpt.so exports only ckpt_*"; else bad "libckpt.so also exports: $others"; fi
for sym in ckpt_dump ckpt_restore ckpt_job_status ckpt_jobs_free ckpt_cancel; do
	if nm -D --defined-only "$lib" | grep -q " T $sym@@CKPT_0.1$"; then ok "exports $sym"
	else bad "does not export $sym"; fi
done
if objdump -p "$lib" | grep -q 'SONAME *libckpt.so.0$'; then ok "soname libckpt.so.0"
else bad "soname is not libckpt.so.0"; fi

# 2. the header alone compiles as C (strict) and as C++
printf '#include <ckpt/ckpt.h>\nint main(void) { struct ckpt_result r; return sizeof(r) == 0; }\n' >"$tmp/h.c"
if gcc -std=c99 -Wall -Wextra -Werror -pedantic -I"$CKPT_SRC/lib/include" -c "$tmp/h.c" -o "$tmp/h.o"; then
	ok "header compiles as C99"; else bad "header does not compile as C99"; fi
cp "$tmp/h.c" "$tmp/h.cc"
if g++ -Wall -Wextra -Werror -I"$CKPT_SRC/lib/include" -c "$tmp/h.cc" -o "$tmp/hh.o"; then
	ok "header compiles as C++"; else bad "header does not compile as C++"; fi

# 3. install the component and build the example with pkg-config
DESTDIR=$tmp/root cmake --install "$CKPT_BUILD" --component libckpt >/dev/null
pcdir=$(dirname "$(find "$tmp/root" -name ckpt.pc | head -1)")
flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$tmp/root pkg-config --cflags --libs ckpt)
if gcc -Wall -Werror "$CKPT_SRC/tests/examples/ckpt_example.c" $flags -o "$tmp/example"; then
	ok "example builds with pkg-config ($flags)"; else bad "example does not build with pkg-config"; fi
libdir=$(dirname "$(find "$tmp/root" -name 'libckpt.so' | head -1)")

# 4. without a daemon: a clear error, exit 1, no directory left behind
for ex in "$CKPT_BUILD/tests/examples/ckpt-example" "$tmp/example"; do
	[ -x "$ex" ] || continue
	set +e
	out=$(LD_LIBRARY_PATH=$libdir "$ex" --socket "$tmp/none.sock" dump $$ "$tmp/img" 2>&1)
	rc=$?
	set -e
	if [ $rc -eq 1 ] && [[ $out == *"ckptd is not running at $tmp/none.sock"* ]]; then
		ok "$(basename "$ex"): no daemon -> $out"; else bad "$(basename "$ex"): rc $rc: $out"; fi
	if [ ! -e "$tmp/img" ]; then ok "no image directory left behind"
	else bad "image directory left behind"; rmdir "$tmp/img"; fi
	set +e
	out=$(CKPT_SOCKET=$tmp/env.sock LD_LIBRARY_PATH=$libdir "$ex" status 2>&1)
	set -e
	if [[ $out == *"$tmp/env.sock"* ]]; then ok "CKPT_SOCKET is used"; else bad "CKPT_SOCKET ignored: $out"; fi
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
