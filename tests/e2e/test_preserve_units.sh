#!/bin/bash
# SPDX-License-Identifier: MIT
# packaging/systemd/ckpt-preserve.service (docs/preserve.md): what the unit
# must say (oneshot, restore at start, dump at stop, ordered after ckptd,
# the file systems, the network and the ordinary services' targets, so
# that at shutdown it stops before all of them; a long stop timeout), and
# `systemd-analyze verify` of the installed form of the three units is
# clean (a broken copy is not: the check can fail).
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (apt-get install systemd)"
SRCU=$CKPT_SRC/packaging/systemd
P=$SRCU/ckpt-preserve.service
PREFIX=$T/prefix
mkdir -p "$PREFIX/bin" "$PREFIX/sbin" "$T/units"
ln -s "$CKPT_BUILD/ckptctl" "$PREFIX/bin/ckptctl"
ln -s "$CKPT_BUILD/ckptd" "$PREFIX/sbin/ckptd"
for u in ckptd.socket ckptd.service ckpt-preserve.service; do
	sed "s|@CMAKE_INSTALL_PREFIX@|$PREFIX|g" "$SRCU/$u" >"$T/units/$u"
done

key() { sed -n "s/^$1=//p" "$P"; }
[[ $(key Type) == oneshot ]] || fail "Type is '$(key Type)'"
[[ $(key RemainAfterExit) == yes ]] || fail "RemainAfterExit is '$(key RemainAfterExit)'"
[[ $(key ExecStart) == *"ckptctl preserve --restore-all"* ]] || fail "ExecStart: $(key ExecStart)"
[[ $(key ExecStart) == -* ]] || fail "a failed restore must not fail the unit (its stop would not run)"
[[ $(key ExecStop) == *"ckptctl preserve --dump-all"* ]] || fail "ExecStop: $(key ExecStop)"
after=" $(key After | tr '\n' ' ') "
for t in ckptd.socket ckptd.service local-fs.target network-online.target multi-user.target; do
	[[ $after == *" $t "* ]] || fail "not After=$t: $after"
done
# After=multi-user.target with WantedBy=multi-user.target is a cycle
# unless the default dependencies are off
[[ $(key DefaultDependencies) == no ]] || fail "DefaultDependencies must be no (ordering cycle)"
[[ " $(key Conflicts) " == *" shutdown.target "* && " $(key Before) " == *" shutdown.target "* ]] ||
	fail "no Conflicts=/Before=shutdown.target"
[[ $(key RequiresMountsFor) == /var/lib/ckpt ]] || fail "RequiresMountsFor: $(key RequiresMountsFor)"
stop=$(key TimeoutStopSec)
[[ $stop =~ ^([0-9]+)min$ ]] && ((BASH_REMATCH[1] >= 10)) || fail "TimeoutStopSec=$stop is short"
log "unit keys as required; stop timeout $stop"

cd "$T/units" || fail "cd"
systemd-analyze verify --man=no ./ckpt-preserve.service ./ckptd.service ./ckptd.socket >"$T/verify.out" 2>&1 ||
	{ cat "$T/verify.out"; fail "systemd-analyze verify failed"; }
[[ -s $T/verify.out ]] && { cat "$T/verify.out"; fail "systemd-analyze verify is not clean"; }
log "systemd-analyze verify: clean"
sed -i 's/^Type=oneshot/Type=oneshoot/; s|^ExecStop=.*|ExecStop=/nonexistent/ckptctl|' ckpt-preserve.service
systemd-analyze verify --man=no ./ckpt-preserve.service ./ckptd.service ./ckptd.socket >"$T/verify.bad" 2>&1
[[ -s $T/verify.bad ]] || fail "systemd-analyze verify says nothing about a broken unit"
log "a broken copy is reported: $(head -n 1 "$T/verify.bad")"
pass
