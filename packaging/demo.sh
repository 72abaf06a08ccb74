#!/bin/bash
# SPDX-License-Identifier: MIT
# A guided demo: a python3 program counting in memory is checkpointed to a
# directory, killed, and restored with the same pid, carrying on from the
# exact line where it stopped. Run as root: bash packaging/demo.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
BUILD=${CKPT_BUILD:-$SRC/build}

say() { printf '\n\033[1m>>> %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

if [[ -z ${CKPT_DEMO_UNDER_REAPER:-} ]]; then
	if (($(id -u) != 0)); then
		echo "demo: run as root (bash packaging/demo.sh): ckpt needs ptrace and clone3(set_tid)" >&2
		exit 1
	fi
	say "Installing build dependencies (skipped when present)"
	bash packaging/install-deps.sh || exit 1
	say "Building into $BUILD"
	{ cmake -S . -B "$BUILD" >/dev/null && make -C "$BUILD" -j"$(nproc)" >/dev/null; } ||
		{ echo "demo: build failed (run: cmake -S . -B build && make -C build)" >&2; exit 1; }
	# Run the rest as a child subreaper: the restored program is reparented to
	# it, and nothing the demo started survives it.
	export CKPT_DEMO_UNDER_REAPER=1
	exec "$BUILD/tests/workloads/reaper" --quiet --timeout 300 -- bash "$0" "$@"
fi

CKPTCTL=$BUILD/ckptctl
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
W=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
PID=
cleanup()
{
	[[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
die() { echo "demo: $*" >&2; exit 1; }
alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

say "Starting a program: a python3 counter whose state lives only in memory"
echo "Every 50 ms it adds n*n to a dict and prints n, the running sum and 32 random bits"
echo "(a seeded Mersenne Twister) to $W/counter.log. It has no idea ckpt exists."
setsid "$PY" "$SRC/tests/workloads/pycounter.py" "$W/counter.log" "$W/ready" </dev/null >/dev/null 2>&1 &
disown $!
for _ in $(seq 100); do [[ -s $W/ready ]] && break; sleep 0.05; done
read -r PID <"$W/ready" || die "the counter did not start"
sleep 2
run ps -o pid,ppid,stat,etime,cmd -p "$PID"
run tail -n 3 "$W/counter.log"

say "Checkpointing it: ckptctl dump $PID -D $W/ckpt"
echo "The process tree is frozen with ptrace, its memory, registers, files and"
echo "signal state go into image files, then it is killed."
run "$CKPTCTL" dump "$PID" -D "$W/ckpt" || die "dump failed"
run ls -la "$W/ckpt"
run du -sh "$W/ckpt"

say "The program is gone"
for _ in $(seq 40); do alive "$PID" || break; sleep 0.05; done
run ps -o pid,stat,cmd -p "$PID" || echo "(no process $PID)"
last=$(tail -n 1 "$W/counter.log")
echo "Last line it printed: $last"
sleep 1
echo "One second later the log still ends with: $(tail -n 1 "$W/counter.log")"

say "What the checkpoint holds: ckptctl show (JSON), first lines"
"$CKPTCTL" show "$W/ckpt" >"$W/show.json" 2>&1 && head -n 25 "$W/show.json"

say "Restoring it: ckptctl restore $W/ckpt"
run "$CKPTCTL" restore "$W/ckpt" || die "restore failed"
sleep 1
run ps -o pid,ppid,stat,etime,cmd -p "$PID" || die "pid $PID is not running after restore"
echo "Same pid. Its parent is now the demo's child subreaper (ckpt-restore, which"
echo "created it, has exited), and ps counts its age from the restore."
n=$(grep -n -F -x "$last" "$W/counter.log" | cut -d: -f1)
echo "The log around the checkpoint (line $n was printed before the dump):"
sed -n "$((n - 2)),$((n + 3))p" "$W/counter.log"

say "Checking every line the program printed: n counts up with no gap or reset"
run "$PY" "$SRC/tests/workloads/pycounter.py" --verify "$W/counter.log" || die "the log has a gap or reset"

say "Done: same pid $PID, same memory, it carried on exactly where it stopped. Cleaning up."
