#!/bin/bash
# SPDX-License-Identifier: MIT
# ckpt-preserve.service under a real systemd (docs/preserve.md): a minimal
# Debian 12 tree (debootstrap) with this build installed in it (`cmake
# --install`, DESTDIR) and ckptd.socket + ckpt-preserve.service enabled,
# booted with `systemd-nspawn --boot`. Inside it: a python3 job (a counter
# kept in memory, written to a file) started in a unit of its own ordered
# before ckpt-preserve.service (as docs/preserve.md says), registered with
# `ckptctl preserve`; `systemctl poweroff` (systemd stops the units in
# order: ckpt-preserve.service's ExecStop dumps the job), its images in
# /var/lib/ckpt/preserved of the tree; booted again: ckpt-preserve.service's
# start restored it (its pid runs, the counter goes on without a gap,
# --list says restored); then `systemctl stop` / `systemctl start
# ckpt-preserve` without a reboot, with the container's next pids arranged
# so that ckpt-restore itself gets the job's saved pid (as after a boot).
#
# Needs systemd-container and debootstrap (packaging/install-deps.sh) and
# Debian's archive (CKPT_DEBIAN_MIRROR, default deb.debian.org). The base
# tree is kept as a tarball in /var/cache/ckpt-test (named by its package
# list); without it, debootstrap takes one to three minutes.
#
# The container: SYSTEMD_SECCOMP=0 (nspawn's seccomp filter on every process
# of the container would make every dump fail: a tracer under seccomp cannot
# suspend its tracee's filters), --capability=all (--continue-clocks needs
# CAP_SYS_TIME, not in nspawn's default set), --register=no --keep-unit (no
# systemd on this host to register with), --private-network, in cgroups of
# its own (nspawn puts its payload/ and supervisor/ below its own cgroup).
: "${CKPT_E2E_TIMEOUT:=540}"
export CKPT_E2E_TIMEOUT
. "$(dirname "$0")/lib.sh"

for c in systemd-nspawn debootstrap; do
	command -v "$c" >/dev/null ||
		fail "$c is missing (apt-get install systemd-container debootstrap; packaging/install-deps.sh)"
done
ROOT=$T/root
MACHINE=ckpt-e2e-$$
CGNAME=ckpt-e2e-nspawn-$$
CACHEDIR=/var/cache/ckpt-test
MIRROR=${CKPT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NS_PID='' INIT='' OWN_CGROUPS=()

# ---- the container ------------------------------------------------------------

# (the container's init killed, its pid namespace goes and nspawn exits)
container_kill()
{
	[[ -n $INIT ]] && kill -KILL "$INIT" 2>/dev/null && poll_for 10 gone "$INIT"
	[[ -n $NS_PID ]] && ! poll_for 10 gone "$NS_PID" && kill -KILL "$NS_PID" 2>/dev/null &&
		poll_for 10 gone "$NS_PID"
	INIT='' NS_PID=''
}
teardown()
{
	local d
	container_kill
	for d in "${OWN_CGROUPS[@]}"; do
		[[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rmdir "/run/systemd/nspawn/propagate/$MACHINE" 2>/dev/null
}
trap 'rc=$?; teardown; (exit $rc); cleanup' EXIT

# cgroups of its own: nspawn makes payload/ and supervisor/ below its
# cgroup, which must not be another test's
own_cgroups "$CGNAME"

# in_ct CMD...: run CMD in the container's namespaces, clean environment
in_ct()
{
	nsenter -t "$INIT" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
# init_up: nspawn's child is the container's systemd (INIT set)
init_up() { INIT=$(pgrep -P "$NS_PID" | head -n 1) && [[ $(cat "/proc/$INIT/comm" 2>/dev/null) == systemd ]]; }
boot()
{
	local what=$1 c
	log "booting the container ($what)"
	echo "==== boot: $what" >>"$T/nspawn.log"
	(
		for c in "${OWN_CGROUPS[@]}"; do echo 0 >"$c/cgroup.procs" || exit 1; done
		exec env SYSTEMD_SECCOMP=0 systemd-nspawn -D "$ROOT" -M "$MACHINE" --boot --register=no \
			--keep-unit --private-network --capability=all --console=pipe
	) </dev/null >>"$T/nspawn.log" 2>&1 &
	NS_PID=$!
	wait_for 30 "the container's systemd" init_up
	wait_for 60 "the container's systemd to listen" in_ct test -S /run/systemd/private
	# is-system-running --wait: until the boot is done (running or degraded)
	timeout 120 nsenter -t "$INIT" -a systemctl is-system-running --wait >"$T/state" 2>&1
	state=$(tail -n 1 "$T/state")
	in_ct systemctl --failed --no-legend --plain >"$T/failed" 2>&1
	[[ $state == running ]] || fail "the container's boot is '$state': $(cat "$T/failed")"
	for u in ckptd.socket ckpt-preserve.service; do
		in_ct systemctl is-active -q "$u" || fail "$u is not active after the boot: $(in_ct systemctl status --no-pager "$u")"
	done
	log "booted: system running, container init pid $INIT, ckpt-preserve.service active"
}
poweroff()
{
	local rc
	log "systemctl poweroff in the container"
	in_ct systemctl poweroff || fail "systemctl poweroff failed"
	wait_for 120 "the container to power off" gone "$NS_PID"
	wait "$NS_PID"
	rc=$?
	((rc == 0)) || fail "systemd-nspawn exited with $rc"
	NS_PID='' INIT=''
	journal >"$T/journal.txt"
}
# journal: the ckpt units' lines, from the container's journalctl while it
# runs (the files in the tree lag behind), else from the tree's files
journal()
{
	local units=(-u ckpt-preserve.service -u ckptd.service -u ckptd.socket -u ckjob.service)
	if [[ -n $INIT ]]; then
		in_ct journalctl --no-pager -o short-monotonic -b "${units[@]}" 2>&1
	else
		journalctl -D "$ROOT/var/log/journal" --no-pager -o short-monotonic "${units[@]}" 2>&1
	fi
}
diag_add "$T/nspawn.log" "$T/journal.txt"

# list_get KEY: KEY of the one registration (ckptctl preserve --list --json)
list_get()
{
	in_ct ckptctl preserve --list --json >"$T/list.json" 2>&1 || fail "preserve --list: $(cat "$T/list.json")"
	"$PYTHON" -c 'import json,sys; e=json.load(open(sys.argv[1]))["preserved"]; assert len(e)==1, e; print(e[0][sys.argv[2]])' \
		"$T/list.json" "$1" || fail "preserve --list --json: $(cat "$T/list.json")"
}

# the counter's file: lines "N PID", N from 1 without a gap or a repeat, one pid
count_ok()
{
	"$PYTHON" - "$ROOT/srv/job/count" "$1" <<'EOF' || fail "the counter's file is not 1..N from one pid"
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.endswith("\n")]
ns = [int(r[0]) for r in rows]
assert ns == list(range(1, len(ns) + 1)), f"gap or repeat near {next(i for i, n in enumerate(ns, 1) if n != i)}"
assert {r[1] for r in rows} == {sys.argv[2]}, {r[1] for r in rows}
EOF
}
job_running()
{
	local pid=$1 d
	in_ct cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ' | grep -q 'counter.py' ||
		fail "pid $pid in the container is not the counter: $(in_ct ps -ef)"
	# restored into ckptd's cgroups (its unit's, ckjob.service, is gone)
	d=$(in_ct systemctl show -P MainPID ckptd.service)
	[[ $(in_ct cat "/proc/$pid/cgroup") == "$(in_ct cat "/proc/$d/cgroup")" ]] ||
		fail "the job (pid $pid) is not in ckptd's cgroups: $(in_ct cat "/proc/$pid/cgroup")"
}

# ---- the tree -------------------------------------------------------------------

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$CKPT_BUILD/CMakeCache.txt")
[[ $prefix == /usr || $prefix == /usr/local ]] ||
	fail "CMAKE_INSTALL_PREFIX is '$prefix': its lib/systemd/system is not among systemd's unit directories"
# the libraries the build links, as Debian packages
libpkgs=$(ldd "$CKPT_BUILD/ckptd" "$CKPT_BUILD/ckptctl" "$CKPT_BUILD/ckpt-restore" |
	awk '/=> \// {print $3}' | sort -u | while read -r f; do
		dpkg -S "$f" 2>/dev/null || dpkg -S "${f#/usr}" 2>/dev/null || dpkg -S "$(realpath "$f")" 2>/dev/null ||
			echo "UNKNOWN:$f"
	done | cut -d: -f1 | sort -u | paste -sd,)
[[ $libpkgs == *UNKNOWN* || -z $libpkgs ]] && fail "cannot name the packages of the build's libraries: $libpkgs"
pkgs=systemd,systemd-sysv,dbus,python3-minimal,$libpkgs
key=$(echo "$pkgs $(dpkg-query -W -f='${Version}' debootstrap)" | sha256sum | cut -c1-16)
tarball=$CACHEDIR/nspawn-bookworm-$key.tar
mkdir -p "$ROOT"
if [[ -s $tarball ]]; then
	tar -xpf "$tarball" --xattrs --xattrs-include='*' --numeric-owner -C "$ROOT" || fail "cannot unpack $tarball"
	log "base tree from $tarball"
else
	log "debootstrap bookworm ($pkgs) from $MIRROR"
	debootstrap --variant=minbase --include="$pkgs" bookworm "$ROOT" "$MIRROR" >"$T/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$T/debootstrap.log"; fail "debootstrap failed"; }
	mkdir -p "$CACHEDIR"
	tar -cf "$tarball.$$" --xattrs --xattrs-include='*' --numeric-owner -C "$ROOT" . &&
		mv "$tarball.$$" "$tarball" || rm -f "$tarball.$$"
	log "base tree made (kept as $tarball)"
fi
DESTDIR=$ROOT cmake --install "$CKPT_BUILD" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "cmake --install failed"; }
for f in bin/ckptctl sbin/ckptd libexec/ckpt/ckpt-restore lib/systemd/system/ckpt-preserve.service; do
	[[ -e $ROOT$prefix/$f ]] || fail "the install lacks $prefix/$f"
done
systemctl --root="$ROOT" enable ckptd.socket ckpt-preserve.service >"$T/enable.log" 2>&1 ||
	{ cat "$T/enable.log"; fail "systemctl --root enable failed"; }
mkdir -p "$ROOT/srv/job"
cat >"$ROOT/srv/job/counter.py" <<'EOF'
import os, time
out = open("/srv/job/count", "a", buffering=1)
n = 0
while True:
    n += 1
    out.write(f"{n} {os.getpid()}\n")
    time.sleep(0.1)
EOF
log "ckpt installed in the tree under $prefix; ckptd.socket and ckpt-preserve.service enabled"

# ---- first boot: the job, registered ---------------------------------------------

boot first
in_ct systemd-run --unit=ckjob -p Before=ckpt-preserve.service -p WorkingDirectory=/srv/job \
	-p StandardInput=null -p StandardOutput=null -p StandardError=null \
	/usr/bin/python3 /srv/job/counter.py >"$T/run.log" 2>&1 || fail "systemd-run: $(cat "$T/run.log")"
J=$(in_ct systemctl show -P MainPID ckjob.service)
[[ $J =~ ^[0-9]+$ ]] && ((J > 0)) || fail "no main pid for ckjob.service: '$J'"
wait_lines "$ROOT/srv/job/count" 10
in_ct ckptctl preserve "$J" --name counter >"$T/reg.out" 2>&1 || fail "ckptctl preserve $J: $(cat "$T/reg.out")"
ID=$(list_get id)
[[ $(list_get state) == registered ]] || fail "state after ckptctl preserve: $(cat "$T/list.json")"
log "job pid $J (in ckjob.service) registered as $ID"

# ---- a real shutdown: the unit's stop dumps it -------------------------------------

poweroff
grep -q 'dump-all: 1 job(s), 0 failed' "$T/journal.txt" || fail "no dump-all of the job at shutdown"
# ckpt-preserve.service stopped (the dump done) before ckptd did
stopped=$(grep -n 'Stopped ckpt-preserve.service' "$T/journal.txt" | tail -n 1 | cut -d: -f1)
ckptd_stop=$(grep -n 'Stopping ckptd.service' "$T/journal.txt" | tail -n 1 | cut -d: -f1)
[[ -n $stopped && -n $ckptd_stop ]] && ((stopped < ckptd_stop)) ||
	fail "ckpt-preserve.service did not stop before ckptd.service"
saved=$ROOT/var/lib/ckpt/preserved/$ID
for f in pstree.img inventory.img mac.img "core-$J.img" "pages-$J.img"; do
	[[ -s $saved/$f ]] || fail "no $f in /var/lib/ckpt/preserved/$ID of the tree"
done
n_down=$(line_count "$ROOT/srv/job/count")
count_ok "$J"
log "powered off: the job was dumped by ckpt-preserve.service's stop ($n_down counts), images in /var/lib/ckpt/preserved/$ID"

# ---- boot again: the unit's start restores it ---------------------------------------

boot second
journal >"$T/journal.txt"
[[ $(list_get state) == registered ]] || fail "state after the boot: $(cat "$T/list.json")"
[[ $(list_get last_result) == "restored as pid "* ]] || fail "not restored: $(cat "$T/list.json")"
grep -q 'restore-all: 1 job(s), 0 failed' "$T/journal.txt" || fail "no restore-all of the job at boot"
P=$(list_get pid)
job_running "$P"
wait_lines "$ROOT/srv/job/count" $((n_down + 10)) 20
count_ok "$J"
[[ -e $saved ]] && fail "the images of a restored job were not removed"
log "restored at boot as pid $P: the counter went on from $n_down without a gap"

# ---- systemctl stop / start of the unit, no reboot --------------------------------
# Each cycle: stop (the job dumped, gone, its counter still), start (restored,
# the counter goes on). The container's next pids are arranged so that one
# of the start's processes takes the job's saved pid $J (the one in the
# images: the pid the job sees, in a pid namespace of its own once restored
# with --new-pidns): ckptctl, ckptd's worker, the worker's helpers, and in
# one cycle ckpt-restore itself, as a fresh boot may do (the check for taken
# pids before the fork cannot see that one). Every cycle must restore.
cycle()
{
	local k=$1 n_stop
	in_ct systemctl stop ckpt-preserve.service || fail "systemctl stop ckpt-preserve failed"
	[[ $(list_get state) == saved ]] || fail "state after systemctl stop: $(cat "$T/list.json")"
	in_ct test -e "/proc/$P" && fail "the job (pid $P) still runs after systemctl stop ckpt-preserve"
	[[ -s $saved/pstree.img ]] || fail "no images after systemctl stop ckpt-preserve"
	n_stop=$(line_count "$ROOT/srv/job/count")
	sleep 0.3
	(($(line_count "$ROOT/srv/job/count") == n_stop)) || fail "the counter goes on while the job is saved"
	# more than 5 starts in 10 s would hit systemd's start rate limit
	# (StartLimitBurst=, "start of the service was attempted too often")
	in_ct systemctl reset-failed ckpt-preserve.service || fail "systemctl reset-failed failed"
	# the sh has its pid (it becomes the start's systemctl): the next is J-k+1
	if [[ $k == - ]]; then
		in_ct systemctl start ckpt-preserve.service || fail "systemctl start ckpt-preserve failed"
	else
		nsenter -t "$INIT" -p -- sh -c "echo $((J - k)) >/proc/sys/kernel/ns_last_pid &&
			exec nsenter -t $INIT -m -u -i -n -C env -i PATH=/usr/bin:/bin systemctl start ckpt-preserve.service" \
			>"$T/start.log" 2>&1 || fail "systemctl start ckpt-preserve failed: $(cat "$T/start.log")"
	fi
	[[ $(list_get last_result) == "restored as pid "* ]] ||
		fail "not restored by systemctl start (k=$k): $(cat "$T/list.json")"
	P=$(list_get pid)
	job_running "$P"
	wait_lines "$ROOT/srv/job/count" $((n_stop + 5)) 20
	count_ok "$J"
	log "systemctl stop / start ckpt-preserve (k=$k): restored as pid $P, the counter went on from $n_stop"
}
hits() { journal | grep -c "ckpt-restore got pid $J of the checkpoint: restoring with --new-pidns"; }
hit='' n_hits=$(hits)
((n_hits)) && log "at this boot's restore already, ckpt-restore had the saved pid $J"
for k in 1 2 3 4 5 6 7 8; do
	cycle "$k"
	if (($(hits) > n_hits)); then
		hit=$k
		break
	fi
done
journal >"$T/journal.txt"
[[ -n $hit ]] || fail "ckpt-restore never got the saved pid $J (the pids were not as arranged)"
log "ckpt-restore had the saved pid $J (k=$hit: next pid J-$((hit - 1))): restored in a new pid namespace"

# ---- a reboot into a systemd with only the v2 hierarchy --------------------------
# SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1: the container mounts only cgroup2,
# while /proc/PID/cgroup still names this host's name=systemd v1 hierarchy
# (the container's processes all in nspawn's payload/ there): the restore
# makes the tasks where it is in that hierarchy, without its mount
poweroff
grep -q 'dump-all: 1 job(s), 0 failed' "$T/journal.txt" || fail "no dump-all of the job at the second shutdown"
n_down=$(line_count "$ROOT/srv/job/count")
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
boot "third, v2 only"
in_ct grep -q ' /sys/fs/cgroup cgroup2 ' /proc/self/mounts || fail "the container has more than the v2 hierarchy"
journal >"$T/journal.txt"
[[ $(list_get last_result) == "restored as pid "* ]] || fail "not restored at the v2-only boot: $(cat "$T/list.json")"
P=$(list_get pid)
job_running "$P"
wait_lines "$ROOT/srv/job/count" $((n_down + 5)) 20
count_ok "$J"
log "restored at the v2-only boot as pid $P: the counter went on from $n_down"
cycle -
pass
