#!/bin/bash
# SPDX-License-Identifier: MIT
# Images that each pass every check of their own (checksums recomputed by
# tests/e2e/imgforge.py) but together describe a tree the dump never saw
# (restorer/consistency.c): each is refused in stage verify, naming the file
# and the field, and leaves nothing behind.
#  - fds-PID.img with a record dropped (pstree.img nr_fds), or an fd
#    renumbered (pstree.img fds_crc32c): the task would lack or move an fd;
#  - one end of a pipe with another dev (a pipe split in two), or another
#    pipe_id and path (a pipe with a read end and no write end);
#  - a unix socket pair whose peer names a third socket.
# The unforged images restore.
. "$(dirname "$0")/lib.sh"

FORGE() { "$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" "$@"; }

# refused DIR WHAT PATTERN...: the restore fails with every PATTERN in its error.
refused()
{
	local dir=$1 what=$2 p
	shift 2
	if ckptctl_run restore "$dir" --json; then
		kill_tree "$(json_get "$OUT" root_pid)"
		fail "$what: restored"
	fi
	[[ $RC == 1 ]] || fail "$what: ckptctl restore exited $RC: $(cat "$ERR")"
	for p in "$@"; do
		grep -qF -- "$p" "$ERR" || fail "$what: the error does not say '$p': $(cat "$ERR")"
	done
	grep -q 'stage verify' "$ERR" || fail "$what: not refused in stage verify: $(cat "$ERR")"
	assert_restore_left_nothing "$T/tree.before"
	log "$what: refused: $(head -n 1 "$ERR" | cut -c1-200)"
}

# forge NAME: a fresh copy of the images in $T/NAME
forge() { rm -rf "$T/$1" && cp -a "$T/img" "$T/$1"; }

# ---- a pipeline tree: producer | filter | consumer ---------------------------------
LOG=$T/tree.log
diag_add "$LOG"
start_workload P "$T/tree.ready" -- "$WL/pipeline" tree "$LOG" "$T/tree.ready"
wait_lines "$LOG" 3 15
tree_snapshot "$P" >"$T/tree.before"
ckpt_dump "$P" "$T/img"
assert_tree_gone "$P"

# The first pipe end of files.img, and a task holding it.
pipe_rec=$(FORGE find "$T/img" files.img 2 4 | head -n 1)
[[ -n $pipe_rec ]] || fail "no pipe in files.img"
pipe_id=$(FORGE get "$T/img" files.img "$pipe_rec" 1)
holder= fd_rec=
for f in "$T"/img/fds-*.img; do
	r=$(FORGE find "$T/img" "$(basename "$f")" 3 "$pipe_id" | head -n 1)
	if [[ -n $r ]]; then
		holder=$(basename "$f" .img)
		holder=${holder#fds-}
		fd_rec=$r
		break
	fi
done
[[ -n $holder ]] || fail "no task holds the pipe of files.img entry $pipe_id"
log "pipe end: files.img record $pipe_rec (id $pipe_id), held by pid $holder (record $fd_rec)"

forge drop
FORGE drop "$T/drop" "fds-$holder.img" "$fd_rec"
refused "$T/drop" "fd record of the pipe end dropped" "fds-$holder.img" "nr_fds"

forge renum
FORGE set "$T/renum" "fds-$holder.img" "$fd_rec" 1 77
refused "$T/renum" "fd of the pipe end renumbered" "fds-$holder.img" "fds_crc32c"

dev=$(FORGE get "$T/img" files.img "$pipe_rec" 20.5)
forge dev
FORGE set "$T/dev" files.img "$pipe_rec" 20.5 $((dev + 1))
refused "$T/dev" "pipe end with another dev" "files.img" "field pipe.dev" "share id and dev"

forge split
FORGE set "$T/split" files.img "$pipe_rec" 20.1 4242
FORGE set "$T/split" files.img "$pipe_rec" 3 "s:pipe:[4242]"
refused "$T/split" "pipe end moved to a pipe of its own" "files.img" "pipe:[4242]" "peer_closed"

ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$RESTORED_PID"
kill_tree "$RESTORED_PID"

# ---- a unix socket pair ---------------------------------------------------------------
D=$T/unix
mkdir -p "$D"
ULOG=$T/unix.log
diag_add "$ULOG"
start_workload U "$T/unix.ready" -- "$WL/unixsk" tree "$D" "$ULOG" "$T/unix.ready"
tree_snapshot "$U" >"$T/tree.before"
ckpt_dump "$U" "$T/uimg"
assert_tree_gone "$U"
# a stream socket (type 1) connected to a peer (unix_sk is field 23)
sk_rec=
for k in $(FORGE find "$T/uimg" files.img 2 9); do
	[[ $(FORGE get "$T/uimg" files.img "$k" 23.2) == 1 ]] || continue
	peer=$(FORGE get "$T/uimg" files.img "$k" 23.4) || continue
	[[ $peer != 0 ]] || continue
	sk_rec=$k
	break
done
[[ -n $sk_rec ]] || fail "no connected stream unix socket in files.img"
# the peer now names a socket of the images that is not connected back to it
other=
for k in $(FORGE find "$T/uimg" files.img 2 9); do
	ino=$(FORGE get "$T/uimg" files.img "$k" 23.1)
	[[ $k == "$sk_rec" || $ino == "$peer" ]] && continue
	[[ $(FORGE get "$T/uimg" files.img "$k" 23.2) == 1 ]] || continue
	other=$ino
	break
done
[[ -n $other ]] || fail "no third stream unix socket in files.img"
rm -rf "$T/upeer" && cp -a "$T/uimg" "$T/upeer"
FORGE set "$T/upeer" files.img "$sk_rec" 23.4 "$other"
refused "$T/upeer" "unix socket whose peer names another socket" "files.img" "field unix_sk.peer"

ckpt_restore "$T/uimg"
kill_tree "$RESTORED_PID"
pass
