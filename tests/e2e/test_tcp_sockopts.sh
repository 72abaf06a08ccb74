#!/bin/bash
# SPDX-License-Identifier: MIT
# Socket options of TCP and UDP sockets (lib/kinds/inet_opts.c) and the
# states around them: tests/workloads/sockopts.py sets every option it knows
# (SO_PRIORITY, SO_BINDTODEVICE, SO_BUF_LOCK, SO_LINGER, TCP_KEEP*,
# TCP_CONGESTION, classic BPF filters locked or not...) on listeners, both
# ends of loopback connections and UDP sockets, IPv4 and IPv6; shuts UDP
# sockets down; keeps a TCP socket whose connection was reset and one whose
# connect was refused. After a dump and restore it reads everything back
# from inside the restored program: every value must be what it was.
# Refused: a socket with an eBPF filter would be (not tested: needs bpf());
# urgent data not read yet (tested: the program then reads it), TCP_MD5SIG
# keys (tested), a TCP upper layer protocol such as kernel TLS (not tested:
# the tls module is not loaded here), a multicast group joined with a source
# filter (tested). Multicast groups joined (IPv4, IPv6) are restored.
. "$(dirname "$0")/lib.sh"

D=$T/work
mkdir -p "$D"
LOG=$T/sockopts.log
diag_add "$LOG"
start_workload P "$T/ready" -- "$PYTHON" "$WLSRC/sockopts.py" "$D" "$LOG" "$T/ready"
grep -q '^setup' "$LOG" && fail "setting the options: $(grep '^setup' "$LOG")"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"
ckpt_restore "$T/img"
touch "$D/go"
wait_grep "$LOG" 'ALL OK|SOME FAILED' 30
grep -q 'ALL OK' "$LOG" || fail "options differ after restore: $(grep FAIL "$LOG" | head -n 20)"
kill_tree "$P"
untrack "$P"

# Urgent data not read yet: TCP repair cannot put the urgent mark back, so
# the dump refuses it naming the pid and the socket; the byte stays.
start_workload U "$T/urg.ready" -- "$PYTHON" -c '
import os, socket, sys, time
lst = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(lst.getsockname())
a, _ = lst.accept()
c.send(b"ab")
c.send(b"!", socket.MSG_OOB)
time.sleep(0.2)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
print("urgent", a.recv(1, socket.MSG_OOB), a.recv(10), flush=True)
time.sleep(300)' "$T/urg.ready" "$T/urg.go"
ckptctl_run dump "$U" -D "$T/urg.img" && fail "a TCP socket with urgent data not read was dumped"
grep -q "pid $U: fd [0-9]*: .*urgent data (MSG_OOB) not read yet" "$ERR" ||
	fail "the refusal does not name the pid, the socket and why: $(cat "$ERR")"
[[ ! -e $T/urg.img/inventory.img ]] || fail "a refused dump left a checkpoint"
assert_running "$U"
touch "$T/urg.go"
wait_for 10 "the program to read its urgent byte" grep -q "^urgent b'!' b'ab'" "$T/U.stdout"
log "urgent data: refused ($(cat "$ERR")), the byte still there"
kill_tree "$U"
untrack "$U"

# State no call reads back, found by the kernel reader: refused naming the
# pid, the socket and why; the program then finds its sockets as they were.
# (An urgent byte already taken, or left in line, still marks where reads
# stop: the dump lost the data after the mark, or failed reading the queue.)
# The urgent marks also without the kernel reader (CKPT_FAULT=kread-none):
# SIOCINQ with and without SO_OOBINLINE, and where the queue's peek stops.
# TCP_MD5SIG keys and source-filtered multicast joins likewise.
for run in urgread urginline reuseport flowlabel urgread:kread-none urginline:kread-none md5 mcfilter; do
	mode=${run%%:*}
	[[ $run == *:* ]] && fault=${run#*:} || fault=
	start_workload W "$T/$run.ready" -- "$PYTHON" "$WLSRC/inetrefuse.py" "$mode" "$T/$run.ready" "$T/$run.go"
	CKPT_FAULT=$fault ckptctl_run dump "$W" -D "$T/$run.img" && fail "$run: dumped"
	case $mode in
	urg*) want="an urgent mark (MSG_OOB) 2 bytes into its unread data, not read past yet" ;;
	reuseport) want="its SO_REUSEPORT group has a BPF program" ;;
	flowlabel) want="it holds IPv6 flow labels (IPV6_FLOWLABEL_MGR)" ;;
	md5) want="it has TCP_MD5SIG keys, which cannot be read back" ;;
	mcfilter) want="it has joined a multicast group with a source filter" ;;
	esac
	grep -qF "$want" "$ERR" && grep -q "pid $W: fd [0-9]*: " "$ERR" ||
		fail "$run: the refusal does not name the pid, the socket and why: $(cat "$ERR")"
	[[ ! -e $T/$run.img/inventory.img ]] || fail "$run: a refused dump left a checkpoint"
	assert_running "$W"
	touch "$T/$run.go"
	wait_for 10 "$run: the program to check its socket" grep -q "^ok $mode\$" "$T/W.stdout"
	log "$run: refused ($(cat "$ERR"))"
	kill_tree "$W"
	untrack "$W"
done

# UDP sockets in multicast groups: no call lists a socket's groups, the
# kernel reader does; they are joined again after restore, and the sender's
# IP_MULTICAST_IF interface (getsockopt gives only its address) is set again.
# The program checks delivery through lo to its IPv4 group before and after;
# the kernel's
# per-device lists (/proc/net/igmp, igmp6) show both groups after restore.
# A group joined with a source filter is refused.
start_workload G "$T/mc.ready" -- "$PYTHON" -c '
import os, socket, struct, sys, time
r4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r4.bind(("0.0.0.0", 0))
r4.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
              struct.pack("4s4si", socket.inet_aton("239.1.2.3"), bytes(4), 1))
r6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
r6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
              socket.inet_pton(socket.AF_INET6, "ff02::1234") + struct.pack("I", 1))
# the sender sends through lo (IP_MULTICAST_IF by interface index: without it
# there is no route to the group)
snd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
snd.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("4s4si", bytes(4), bytes(4), 1))
r4.settimeout(2)
def check(what):
    snd.sendto(what.encode(), ("239.1.2.3", r4.getsockname()[1]))
    try:
        print("ok" if r4.recv(64) == what.encode() else "bad", what, flush=True)
    except OSError as e:
        print("bad", what, e, flush=True)
check("before")
open(sys.argv[1] + ".tmp", "w").write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
check("after")
time.sleep(300)' "$T/mc.ready" "$T/mc.go"
grep -qx "ok before" "$T/G.stdout" || fail "multicast delivery before the dump: $(cat "$T/G.stdout")"
ckpt_dump "$G" "$T/mc.img"
assert_tree_gone "$G"
grep -qi "030201EF" /proc/net/igmp && fail "the group is still joined on lo with the program gone"
ckpt_restore "$T/mc.img"
touch "$T/mc.go"
wait_for 10 "the restored program's check" grep -q " after" "$T/G.stdout"
grep -qx "ok after" "$T/G.stdout" || fail "multicast delivery after restore: $(cat "$T/G.stdout")"
grep -qi "030201EF" /proc/net/igmp || fail "IPv4 group not joined after restore: $(cat /proc/net/igmp)"
grep -q "ff020000000000000000000000001234" /proc/net/igmp6 ||
	fail "IPv6 group not joined after restore: $(grep '^1 ' /proc/net/igmp6)"
log "multicast groups (IPv4, IPv6) joined again after restore; delivery through lo works"
kill_tree "$G"
untrack "$G"

pass
