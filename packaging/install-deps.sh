#!/bin/bash
# SPDX-License-Identifier: MIT
# Install everything needed to build and test ckpt on Debian 12 (as root,
# non-interactive). Idempotent: apt is not touched when all is present.
set -euo pipefail

PKGS=(
	build-essential cmake pkg-config        # toolchain
	protobuf-c-compiler libprotobuf-c-dev   # image format
	libnl-3-dev libnl-route-3-dev libcap-dev
	libssl-dev                             # HMAC-SHA256 of ckptd's mac.img
	libnftables-dev nftables               # the network lock of TCP connections
	redis-server                            # the redis test (tests/e2e/test_tcp_redis.sh)
	check                                   # unit tests
	scdoc                                   # the man pages (docs/man/*.scd)
	debhelper dpkg-dev fakeroot lintian     # the Debian packages (packaging/build-deb.sh, test_deb)
	bash-completion                         # the completion's test (tests/unit/test_completion.sh)
	clang libclang-rt-14-dev llvm           # fuzz targets: clang, libFuzzer's runtime, llvm-symbolizer
	python3 procps psmisc util-linux coreutils diffutils mawk # e2e tests, demo, bench
	systemd passwd                          # systemd-socket-activate, useradd (ckptd tests)
	openjdk-17-jdk-headless                 # the Java test (javac; the JRE comes with it)
	bsdutils                                # script(1): a real pty for the shell-job test
	xz-utils                                # the xz -9 test (tests/e2e/test_xz.sh)
	liburing-dev                            # the io_uring workload (tests/workloads/iouring.c)
	mariadb-server mariadb-client           # MariaDB with its io_uring (tests/e2e/test_iouring_mariadb.sh)
	slurmctld slurmd slurm-client munge     # the Slurm batch-job test (tests/e2e/test_slurm.sh)
	systemd-container debootstrap           # ckpt-preserve.service under a real systemd: systemd-nspawn --boot of a debootstrapped tree (tests/e2e/test_preserve_systemd.sh)
)

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi

SUDO=
if (($(id -u) != 0)); then
	command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
