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
# the tls module is not loaded here), multicast groups joined (IPv4 and IPv6,
# tested; a UDP socket that joined none is dumped as before).
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

# A listener with TCP_MD5SIG keys: they cannot be read back, so refused.
start_workload M "$T/md5.ready" -- "$PYTHON" -c '
import os, socket, struct, sys, time
lst = socket.create_server(("127.0.0.1", 0))
sa = struct.pack("HH4s120x", socket.AF_INET, 0, socket.inet_aton("127.0.0.1"))
lst.setsockopt(socket.IPPROTO_TCP, 14, sa + struct.pack("BBHI80s", 0, 0, 6, 0, b"secret"))
open(sys.argv[1] + ".tmp", "w").write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)' "$T/md5.ready"
ckptctl_run dump "$M" -D "$T/md5.img" && fail "a listener with TCP_MD5SIG keys was dumped"
grep -q "pid $M: fd [0-9]*: .*TCP_MD5SIG keys, which cannot be read back" "$ERR" ||
	fail "the refusal does not name the pid, the socket and why: $(cat "$ERR")"
assert_running "$M"
log "TCP_MD5SIG keys: refused ($(cat "$ERR"))"
kill_tree "$M"
untrack "$M"

# UDP sockets that joined multicast groups (IPv4, IPv6): no call lists a
# socket's groups, the kernel reader does; not restored yet, so refused.
for fam in 4 6; do
	start_workload G "$T/mc$fam.ready" -- "$PYTHON" -c '
import os, socket, struct, sys, time
if sys.argv[2] == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4si", socket.inet_aton("239.1.2.3"), bytes(4), 1))
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, "ff02::1234") + struct.pack("I", 1))
plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)' "$T/mc$fam.ready" "$fam"
	ckptctl_run dump "$G" -D "$T/mc$fam.img" && fail "IPv$fam: a socket in a multicast group was dumped"
	grep -q "pid $G: fd [0-9]*: .*joined multicast groups" "$ERR" ||
		fail "IPv$fam: the refusal does not name the pid, the socket and why: $(cat "$ERR")"
	assert_running "$G"
	log "IPv$fam multicast group joined: refused ($(cat "$ERR"))"
	kill_tree "$G"
	untrack "$G"
done
pass
