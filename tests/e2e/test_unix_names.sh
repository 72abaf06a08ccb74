#!/bin/bash
# SPDX-License-Identifier: MIT
# Unix socket names (lib/kinds/unix.c, "Names"). tests/workloads/unixname.py:
# listeners and a datagram socket bound to relative names, a listener whose
# socket file was renamed after bind (HAProxy's stats.sock.PID.tmp ->
# stats.sock), and one bound to a relative name and renamed:
#  - after restore getsockname() answers the same names (relative ones
#    too), the socket files are at their current names with their mode,
#    the bound-only name (stats.sock.PID.tmp) does not exist, the queued
#    datagram is there, and real clients connecting to the current names
#    are accepted and answered;
#  - a socket file replaced by a symlink right after its bind at restore
#    is refused, the symlink's target left as it was;
#  - a relative name whose socket file the dump cannot find (the program
#    changed its working directory since bind) is refused naming the pid,
#    the fd and the name, and the program keeps running.
. "$(dirname "$0")/lib.sh"

LOG=$T/names.log
D=$T/work
mkdir -p "$D"
diag_add "$LOG"
start_workload P "$T/names.ready" -- "$PYTHON" "$WLSRC/unixname.py" names "$D" "$LOG" "$T/names.ready"
tree_snapshot "$P" >"$T/before"
ckpt_dump "$P" "$T/lr.img" --leave-running
assert_running "$P"
ckpt_dump "$P" "$T/names.img"
assert_tree_gone "$P"
# the killed program's socket files stay (stale): the restore replaces them
[[ -S $D/stats.sock && -S $D/sub/rel.sock && -S $D/sub/relren.sock ]] || fail "expected the stale socket files"
# a socket file just bound replaced by a symlink to a FIFO (CKPT_PAUSE at
# unix-bound), before its mode and owner are set: refused, the FIFO
# left as it was (chmod by path would have followed the symlink)
touch "$T/before-bind"
sleep 0.01
paused_restore unix-bound "$T/names.img" --json
bound=$(find "$D" -type s -newer "$T/before-bind" | head -n 1)
[[ -n $bound ]] || fail "paused at unix-bound, but no socket file was just bound in $D"
swap_made symlink "$bound" "$T/other"
swap_refused "a symlink at the socket file just bound" "$bound" \
	"its socket file $bound was replaced by another file" "$T/before"
ckpt_restore "$T/names.img"
assert_same_tree "$T/before" "$P"
[[ -S $D/stats.sock ]] || fail "no socket file $D/stats.sock after restore"
[[ $(stat -c %a "$D/stats.sock") == 660 ]] || fail "stats.sock mode $(stat -c %a "$D/stats.sock"), not 660"
[[ ! -e $D/stats.sock.$P.tmp ]] || fail "the bound-only name stats.sock.$P.tmp exists after restore"
[[ ! -e $D/sub/relren.tmp ]] || fail "the bound-only name sub/relren.tmp exists after restore"
[[ -S $D/sub/rel.sock && -S $D/sub/relren.sock && -S $D/sub/reldg.sock ]] || fail "socket files missing in $D/sub: $(ls -l "$D/sub")"
touch "$D/go"
# real clients, outside the tree, connecting to the current names
"$PYTHON" - "$D" "$P" >"$T/clients" 2>&1 <<'PY' || fail "clients: $(cat "$T/clients")"
import socket, sys
d, pid = sys.argv[1:3]
want = {d + "/sub/rel.sock": "rel.sock", d + "/stats.sock": d + "/stats.sock.%s.tmp" % pid,
        d + "/sub/relren.sock": "relren.tmp"}
for path, name in want.items():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    peer = c.getpeername()
    c.sendall(b"ping")
    got = c.recv(200).decode()
    assert got == "pong " + name, "%s answered %r" % (path, got)
    assert peer == name, "%s: getpeername %r" % (path, peer)
    print("ok", path, got)
PY
cat "$T/clients"
wait_grep "$LOG" '^DONE' 20
grep -q FAIL "$LOG" && fail "the workload failed: $(cat "$LOG")"
for what in names cwd queued "accept rel" "accept stats" "accept relren"; do
	grep -qx "ok $what" "$LOG" || fail "no 'ok $what' in the log: $(cat "$LOG")"
done
kill_tree "$P"
untrack "$P"

# A relative name whose file is not where the dump looks: refused.
LLOG=$T/lost.log
diag_add "$LLOG"
start_workload L "$T/lost.ready" -- "$PYTHON" "$WLSRC/unixname.py" lost "$T/lost" "$LLOG" "$T/lost.ready"
ckptctl_run dump "$L" -D "$T/lost.img" && fail "dump of a relative name with its socket file out of sight succeeded"
log "refused: $(cat "$ERR")"
grep -q "pid $L" "$ERR" && grep -qE "fd [0-9]+" "$ERR" && grep -q "relative path x.sock" "$ERR" ||
	fail "the refusal does not name the pid, the fd and the name: $(cat "$ERR")"
[[ ! -e $T/lost.img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$L"
lines=$(line_count "$LLOG")
wait_lines "$LLOG" $((lines + 3)) 10
pass
