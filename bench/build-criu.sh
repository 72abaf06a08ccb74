#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/build-criu.sh [DIR]: CRIU built from Debian's source, for
# bench/criu.sh to measure ckpt against (issue 12's yardstick: CRIU 4.2).
# Debian 12's own criu (3.17) does not start on Linux 6.13+ (its vDSO is
# split in three); the source of unstable's (4.2.1) builds on Debian 12.
# Fetches that source from Debian's archive (deb.debian.org, the only
# network these machines have) with an apt configuration of its own (the
# system's sources are not touched), installs the build dependencies and
# builds criu alone (no docs) in DIR (default /var/tmp/ckpt-criu). Its
# kernel facts cache goes to /run/criu, a tmpfs this script mounts if
# needed (CRIU keeps it only on a tmpfs; /run is not one here, and without
# it each criu run spends its first ~0.7 s finding them again). Prints the
# criu binary's path. Needs root. Not part of the tests.
set -euo pipefail
DIR=${1:-/var/tmp/ckpt-criu}
VERSION=${CKPT_CRIU_VERSION:-4.2.1}
(($(id -u) == 0)) || { echo "build-criu: run as root" >&2; exit 1; }
mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial"

if [[ ! -x $DIR/criu-$VERSION/criu/criu ]]; then
	cat >"$DIR/apt/sources.list" <<-EOF
		deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
	EOF
	apt_opts=(-o "Dir::Etc::sourcelist=$DIR/apt/sources.list" -o Dir::Etc::sourceparts=-
		-o "Dir::State::Lists=$DIR/apt/lists" -o "Dir::Cache=$DIR/apt/cache")
	apt-get "${apt_opts[@]}" update -q >&2
	# the upstream tarball only: Debian's packaging is not needed
	(cd "$DIR" && apt-get "${apt_opts[@]}" source --download-only "criu=$VERSION-1" >&2) || true
	[[ -f $DIR/criu_$VERSION.orig.tar.xz ]] ||
		{ echo "build-criu: criu $VERSION's source is not in Debian's archive" >&2; exit 1; }
	apt-get install -y -q --no-install-recommends build-essential pkgconf libbsd-dev \
		libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev \
		libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler \
		python3-protobuf uuid-dev >&2
	tar -C "$DIR" -xf "$DIR/criu_$VERSION.orig.tar.xz"
	make -C "$DIR/criu-$VERSION" -j"$(nproc)" RUNDIR=/run/criu criu >&2
fi
mkdir -p /run/criu
mountpoint -q /run/criu || mount -t tmpfs -o size=16m,mode=0755 ckpt-criu /run/criu
"$DIR/criu-$VERSION/criu/criu" check >&2 || { echo "build-criu: criu check failed" >&2; exit 1; }
echo "$DIR/criu-$VERSION/criu/criu"
