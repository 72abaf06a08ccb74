# SPDX-License-Identifier: MIT
# Clients of tests/workloads/tcpecho.py outside the tree, for the TCP tests
# (sourced after lib.sh; the test sets PORT and D, the clients' directory).
ECHO=$WLSRC/tcpecho.py

# start_client NAME HOST: a client sending to HOST:$PORT until $D/stop
# exists; its progress and verdict in $D/NAME.out
start_client()
{
	setsid "$PYTHON" "$ECHO" client "$2" "$PORT" "$D/stop" "$D/$1.out" </dev/null >"$D/$1.err" 2>&1 &
	disown $!
	diag_add "$D/$1.out" "$D/$1.err"
}
recv_bytes() { awk '$1 == "recv" { n = $2 } END { print n + 0 }' "$1"; }
has_more() { (($(recv_bytes "$D/$1.out") > $2 + 2000)); }
# progressing NAME: the client received more echoed bytes within 15 s, no failure
progressing()
{
	local before
	before=$(recv_bytes "$D/$1.out")
	wait_for 15 "$1 to receive more echoes (had $before bytes)" has_more "$1" "$before"
	! grep -q FAIL "$D/$1.out" || fail "$1: $(grep FAIL "$D/$1.out")"
}
