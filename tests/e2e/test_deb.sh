#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian packages, as an administrator would use them: built from this
# tree (packaging/build-deb.sh: dpkg-buildpackage, lintian without errors),
# installed on this machine with apt, ckptd started on the installed socket
# path by socket activation as ckptd.socket would (systemd is not PID 1
# here), an unprivileged user's program dumped and restored through it with
# the installed ckptctl, then the packages purged: nothing of them is left.
: "${CKPT_E2E_TIMEOUT:=1200}"
export CKPT_E2E_TIMEOUT
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ckptd_lib.sh"

SOCKPATH=/run/ckpt/ckptd.sock
for f in /usr/bin/ckptctl /usr/sbin/ckptd "$SOCKPATH"; do
	[[ -e $f ]] && fail "$f exists already: this test installs and purges the packages itself"
done
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate missing (package systemd)"

ckptd_user_add DUID ckpt-deb-u
# the purge removes /var/lib/ckpt: one there before (a ckptd run by hand,
# `cmake --install`) is kept aside and put back
[[ -e /var/lib/ckpt ]] && mv /var/lib/ckpt "$T/var-lib-ckpt.kept"
purge()
{
	dpkg --purge libckpt-dev libckpt0 ckpt >"$T/purge.log" 2>&1
	local rc=$?
	[[ -e $T/var-lib-ckpt.kept && ! -e /var/lib/ckpt ]] && mv "$T/var-lib-ckpt.kept" /var/lib/ckpt
	return $rc
}
# (after ckptd_user_add, whose EXIT trap this one replaces): whatever
# happens, the packages go, the socket file goes, the user goes
trap 'rc=$?; [[ -n ${SA:-} ]] && kill "$SA" 2>/dev/null; purge; rm -f "$SOCKPATH"; rmdir /run/ckpt 2>/dev/null; for u in "${CKPTD_USERS[@]}"; do userdel -f "$u" >/dev/null 2>&1; done; (exit $rc); cleanup' EXIT

if [[ -n ${CKPT_DEB_DIR:-} ]]; then
	# (developers: packages built before by packaging/build-deb.sh)
	log "using the packages of $CKPT_DEB_DIR"
	cp -r "$CKPT_DEB_DIR" "$T/deb"
else
	log "building the packages (packaging/build-deb.sh)"
	DEB_BUILD_OPTIONS=nocheck bash "$CKPT_SRC/packaging/build-deb.sh" "$T/deb" >"$T/build.log" 2>&1 ||
		{ tail -n 40 "$T/build.log"; fail "packaging/build-deb.sh failed"; }
	diag_add "$T/build.log"
	grep -q "lintian: no errors" "$T/build.log" || fail "build-deb did not report a clean lintian run"
fi
version=$(sed -n '1s/^ckpt (\([^)]*\)).*/\1/p' "$CKPT_SRC/packaging/debian/changelog")
for p in ckpt libckpt0 libckpt-dev; do
	[[ -e $T/deb/${p}_${version}_amd64.deb ]] || fail "no ${p}_${version}_amd64.deb"
done
log "built: $(cd "$T/deb" && ls ./*.deb | grep -v dbgsym | tr '\n' ' ')"

DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	"$T/deb/ckpt_${version}_amd64.deb" "$T/deb/libckpt0_${version}_amd64.deb" \
	"$T/deb/libckpt-dev_${version}_amd64.deb" >"$T/install.log" 2>&1 ||
	{ tail -n 30 "$T/install.log"; fail "apt-get install of the packages failed"; }
for f in /usr/bin/ckptctl /usr/sbin/ckptd /usr/libexec/ckpt/ckpt-restore /lib/systemd/system/ckptd.socket \
	/lib/systemd/system/ckptd.service /lib/systemd/system/ckpt-preserve.service /usr/share/man/man1/ckptctl.1.gz /usr/share/man/man8/ckptd.8.gz \
	/usr/share/man/man3/libckpt.3.gz /usr/share/bash-completion/completions/ckptctl \
	/usr/include/ckpt/ckpt.h /usr/share/doc/ckpt/daemon.md; do
	[[ -e $f ]] || fail "installed packages lack $f"
done
[[ $(pkg-config --modversion ckpt) == "$version" ]] || fail "pkg-config ckpt: $(pkg-config --modversion ckpt 2>&1)"
grep -q '^ExecStart=/usr/sbin/ckptd$' /lib/systemd/system/ckptd.service || fail "ckptd.service does not start /usr/sbin/ckptd"
# the library links for a scheduler: the example client against the installed copy
cc -o "$T/example" "$CKPT_SRC/tests/examples/ckpt_example.c" $(pkg-config --cflags --libs ckpt) ||
	fail "the example client does not build against the installed libckpt-dev"
log "installed: $(dpkg-query -W -f='${Package} ${Version}, ' ckpt libckpt0 libckpt-dev)"

# ckptd on the socket of ckptd.socket (ListenSequentialPacket, 0666)
mkdir -p /run/ckpt
systemd-socket-activate --seqpacket -l "$SOCKPATH" \
	/usr/sbin/ckptd >"$T/ckptd.log" 2>&1 &
SA=$!
disown "$SA"
TRACKED+=("$SA")
diag_add "$T/ckptd.log"
wait_for 10 "the socket $SOCKPATH" test -S "$SOCKPATH"
chmod 0666 "$SOCKPATH"

chmod 0711 "$T"
install -d -m 0755 "$T/bin" && install -m 0755 "$WL/sleeper" "$T/bin/sleeper"
mkdir -m 0700 "$T/u" && chown ckpt-deb-u: "$T/u"
# the program's stdout and stderr are the user's files: its restore opens them
touch "$T/u/out" "$T/P.stderr" && chown ckpt-deb-u: "$T/u/out" "$T/P.stderr"
cd "$T/u" || fail "cd $T/u"
start_workload P "$T/u/p.ready" --stdout "$T/u/out" -- setpriv --reuid=ckpt-deb-u --regid="$(id -g ckpt-deb-u)" \
	--clear-groups --inh-caps=-all -- "$T/bin/sleeper" nanosleep "$T/u/p.log" "$T/u/p.ready" 1
wait_lines "$T/u/p.log" 2 10
tree_snapshot "$P" >"$T/tree.before"

u() { as_user ckpt-deb-u /usr/bin/ckptctl "$@"; }
u dump "$P" -D "$T/u/ck" >"$T/dump.out" 2>"$T/dump.err" || fail "the user's dump through the installed ckptd failed: $(cat "$T/dump.err")"
assert_tree_gone "$P"
[[ -s $T/u/ck/mac.img ]] || fail "the checkpoint was not made by the installed ckptd (no mac.img)"
[[ -s /var/lib/ckpt/mac.key ]] || fail "the installed ckptd made no key in /var/lib/ckpt"
n=$(line_count "$T/u/p.log")
u restore "$T/u/ck" >"$T/restore.out" 2>"$T/restore.err" || fail "the user's restore failed: $(cat "$T/restore.err")"
assert_tree_running "$P"
assert_same_tree "$T/tree.before" "$P"
wait_lines "$T/u/p.log" $((n + 2)) 10
[[ $(stat -c %U "/proc/$P") == ckpt-deb-u ]] || fail "the restored program does not run as the user"
log "dumped and restored pid $P as ckpt-deb-u through the installed ckptd"
kill_tree "$P"

kill "$SA" 2>/dev/null
wait_for 10 "ckptd to stop" gone "$SA"
untrack "$SA"
SA=
rm -f "$SOCKPATH"
dpkg --purge libckpt-dev libckpt0 ckpt >"$T/purge.log" 2>&1 || { cat "$T/purge.log"; fail "dpkg --purge failed"; }
for f in /usr/bin/ckptctl /usr/sbin/ckptd /usr/libexec/ckpt /lib/systemd/system/ckptd.socket \
	/usr/include/ckpt /usr/share/doc/ckpt /var/lib/ckpt; do
	[[ -e $f ]] && fail "$f is left after dpkg --purge"
done
for p in ckpt libckpt0 libckpt-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "installed" && fail "$p is still installed"
done
log "purged: nothing of the packages is left"
purge # (puts back a /var/lib/ckpt kept aside)
pass
