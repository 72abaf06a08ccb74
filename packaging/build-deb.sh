#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the Debian packages (ckpt, libckpt0, libckpt-dev) from this tree:
#
#     bash packaging/build-deb.sh [OUTDIR]      (default: ./deb)
#
# The tracked files of the checkout are copied to a scratch directory with
# packaging/debian/ put in place as debian/, and built there with
# `dpkg-buildpackage -b -us -uc` (Debian's hardening flags from
# dpkg-buildflags, no -Werror). The .deb files land in OUTDIR; lintian runs
# on them and any error fails the build.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$SRC/deb}")
need=(debhelper dpkg-dev lintian fakeroot)
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		{ echo "build-deb: $p is missing (packaging/install-deps.sh installs it)" >&2; exit 1; }
done
version=$(sed -n 's/^project(ckpt VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
changelog=$(sed -n '1s/^ckpt (\([^)]*\)).*/\1/p' "$SRC/packaging/debian/changelog")
[[ $version == "$changelog" ]] ||
	{ echo "build-deb: CMakeLists.txt says $version, packaging/debian/changelog $changelog" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/ckpt-$version"
(cd "$SRC" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$WORK/ckpt-$version"
cp -r "$SRC/packaging/debian" "$WORK/ckpt-$version/debian"
(cd "$WORK/ckpt-$version" && dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$WORK/build.log" 2>&1 ||
	{ tail -n 60 "$WORK/build.log" >&2; echo "build-deb: dpkg-buildpackage failed" >&2; exit 1; }
mkdir -p "$OUT"
debs=("$WORK"/*.deb)
cp "${debs[@]}" "$WORK"/*.changes "$WORK"/*.buildinfo "$OUT"/
echo "build-deb: built $(cd "$OUT" && ls ./*.deb | tr '\n' ' ')in $OUT"
# lintian: errors fail; warnings are printed
if ! lintian --fail-on error --suppress-tags bad-distribution-in-changes-file "$OUT"/ckpt_"$version"_*.changes; then
	echo "build-deb: lintian reports errors" >&2
	exit 1
fi
echo "build-deb: lintian: no errors"
