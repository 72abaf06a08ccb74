#!/bin/bash
# SPDX-License-Identifier: MIT
# TCP listeners with connections not yet accepted (lib/kinds/inet.c,
# dump/dump.c try_again): only accept() reaches such a connection and none
# can be put back in an accept queue, so the dump lets the program accept
# them (the tree resumed between tries, up to 2 s) instead of refusing at
# once; tests/workloads/tcpecho.py server with a GATE file (it accepts only
# while the file exists), clients outside the tree:
#  - a program that never accepts: the dump is refused naming the pid, the
#    fd and the waiting connection (and fails at once with CKPT_FAULT at
#    dump-retry), the tree runs, the connection waits on and is echoed
#    once accepted;
#  - the program accepts while the dump waits (paused at dump-retry): the
#    dump succeeds, the restored server echoes on the accepted connection;
#  - a connection that comes after the listener was saved, while the
#    checkpoint is committed (paused at dump-finish): the checkpoint is
#    withdrawn and the tree resumed, the next try saves the connection
#    once accepted; without this check the kill resets that client.
#  - the same with a unix listener is in test_unix.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tcpecho_lib.sh"

PORT=$((20000 + RANDOM % 20000))
D=$T/work
GATE=$D/gate
mkdir -p "$D"

# pending N: the IPv4 listener's accept queue holds N connections
# (/proc/net/tcp: for a listener, rx_queue is the accept queue's length)
accept_queue()
{
	local q
	q=$(awk -v p="$(printf ':%04X' "$PORT")" '$4 == "0A" && substr($2, length($2) - 4) == p {
		split($5, q, ":"); print q[2] }' /proc/net/tcp)
	echo $((16#${q:-0}))
}
pending() { [[ $(accept_queue) == "$1" ]]; }
accepted() { [[ $(grep -c accepted "$LOG") == "$1" ]]; }
# dump_paused DIR STEPS...: a dump in the background, paused at each step
# (CKPT_PAUSE); its pid in DUMPER
dump_paused()
{
	local dir=$1 spec
	shift
	spec=$(printf '%s,' "$@")
	CKPT_PAUSE=${spec%,} timeout -k 5 120 "$CKPTCTL" dump "$S" -D "$dir" >"$T/bg.out" 2>"$T/bg.err" &
	DUMPER=$!
	diag_add "$T/bg.err"
}

LOG=$T/server.log
diag_add "$LOG"
start_workload S "$T/server.ready" -- "$PYTHON" "$ECHO" server "$PORT" "$T/server.ready" "$LOG" "$GATE"
LOCKED_ROOTS+=("$S")

# ---- never accepted: refused after the wait, nothing changed ----------------------------
start_client c1 127.0.0.1
wait_for 10 "c1 to wait in the accept queue" pending 1
t0=$(now_us)
ckptctl_run dump "$S" -D "$T/refused.img" && fail "the dump of a listener whose connection is never accepted succeeded"
msg=$(cat "$ERR")
log "refused after $((($(now_us) - t0) / 1000)) ms: $msg"
[[ $msg == *"pid $S: fd "* && $msg == *"127.0.0.1:$PORT"* && $msg == *"1 connection not yet accepted"* &&
	$msg == *"still so after"* ]] || fail "the refusal does not name the pid, fd, listener and the wait: $msg"
assert_running "$S"
[[ ! -e $T/refused.img/inventory.img ]] || fail "a refused dump left a checkpoint"
pending 1 || fail "the connection is no longer waiting after the refused dump (queue: $(accept_queue))"
# a fault between two tries: the dump fails there, nothing changed
CKPT_FAULT=dump-retry ckptctl_run dump "$S" -D "$T/fault.img" && fail "the dump succeeded despite CKPT_FAULT=dump-retry"
grep -q "dump-retry" "$ERR" || fail "the error does not name the step: $(cat "$ERR")"
assert_running "$S"
[[ ! -e $T/fault.img/inventory.img ]] || fail "a failed dump left a checkpoint"
pending 1 || fail "the connection is no longer waiting after the failed dump"
touch "$GATE"
wait_for 10 "c1 to be accepted" accepted 1
rm -f "$GATE"
progressing c1
log "never accepted: refused, the connection accepted afterwards carries on"

# ---- accepted while the dump waits ---------------------------------------------------------
start_client c2 127.0.0.1
wait_for 10 "c2 to wait in the accept queue" pending 1
dump_paused "$T/acc.img" "dump-retry:$T/retry"
wait_for 60 "the dump to wait for the accept (paused at dump-retry)" test -e "$T/retry.paused"
assert_running "$S"
touch "$GATE"
wait_for 10 "c2 to be accepted" accepted 2
rm -f "$GATE"
touch "$T/retry"
wait "$DUMPER" || fail "the dump failed after the program accepted: $(cat "$T/bg.err")"
assert_tree_gone "$S"
ckpt_restore "$T/acc.img"
[[ $RESTORED_PID == "$S" ]] || fail "restored pid $RESTORED_PID, dumped $S"
progressing c1
progressing c2
log "accepted during the dump's wait: checkpointed, both connections carry on"

# ---- a connection comes while the checkpoint is committed -------------------------------------
dump_paused "$T/late.img" "dump-finish:$T/fin" "dump-retry:$T/retry2"
wait_for 60 "the dump to pause at dump-finish" test -e "$T/fin.paused"
start_client c3 127.0.0.1
wait_for 10 "c3 to wait in the accept queue" pending 1
touch "$T/fin"
wait_for 30 "the checkpoint to be withdrawn and the dump to try again" test -e "$T/retry2.paused"
assert_running "$S"
touch "$GATE"
wait_for 10 "c3 to be accepted" accepted 3
rm -f "$GATE"
touch "$T/retry2"
wait "$DUMPER" || fail "the dump failed after the late connection was accepted: $(cat "$T/bg.err")"
grep -q "a connection came while the checkpoint was committed" "$T/bg.err" ||
	log "(the withdrawal is not in the dump's output: $(cat "$T/bg.err"))"
assert_tree_gone "$S"
ckpt_restore "$T/late.img"
[[ $RESTORED_PID == "$S" ]] || fail "restored pid $RESTORED_PID, dumped $S"
touch "$GATE"
progressing c1
progressing c2
progressing c3
"$PYTHON" "$ECHO" probe 127.0.0.1 "$PORT" | grep -q 'probe ok' || fail "a new client got no echo"
touch "$D/stop"
for c in c1 c2 c3; do
	wait_grep "$D/$c.out" '^(ok|FAIL)' 60
	grep -q '^ok' "$D/$c.out" || fail "$c: $(tail -n 1 "$D/$c.out")"
done
log "late connection: the checkpoint withdrawn, the next one holds it; every echo came back"
kill_tree "$S"
pass
