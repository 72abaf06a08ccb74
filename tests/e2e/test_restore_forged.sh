#!/bin/bash
# SPDX-License-Identifier: MIT
# Readers never trust an image. Each protobuf image of a two-task tree is
# mutated in turn (tests/e2e/imgforge.py: a field set to an edge value, cut,
# padded, dropped or repeated) and its checksum in inventory.img fixed, so
# that the restorer's own checks, not the checksum, must catch it. Every
# restore must end cleanly: exit 0 or 1 with a message, never a crash or a
# hang; a failed restore leaves no process behind; a restore that succeeds
# (the mutation was harmless) is killed. The original images never change.
# CKPT_FORGE_SEEDS (default 6) mutations per image.
. "$(dirname "$0")/lib.sh"

SEEDS=${CKPT_FORGE_SEEDS:-6}
LOG=$T/wait4.log
diag_add "$LOG"
start_workload W4 "$T/w4.ready" -- "$WL/sleeper" wait4 "$LOG" "$T/w4.ready" 600
tree_snapshot "$W4" >"$T/tree.before"
ckpt_dump "$W4" "$T/img"
assert_tree_gone "$W4"
image_sums "$T/img" >"$T/sums.before"
"$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" sums "$T/img" >"$T/forge.sums" ||
	{ cat "$T/forge.sums"; fail "imgforge's CRC32C disagrees with inventory.img: the tool is out of date"; }
IMAGES=$(cd "$T/img" && for f in *.img; do [[ $f == pages-* || $f == inventory.img ]] || echo "$f"; done)

refused=0 restored=0
for seed in $(seq 1 "$SEEDS"); do
	for f in $IMAGES; do
		rm -rf "$T/bad"
		cp -a "$T/img" "$T/bad"
		what=$("$PYTHON" "$CKPT_SRC/tests/e2e/imgforge.py" mutate "$T/bad" "$f" "$seed") ||
			fail "imgforge failed on $f"
		CKPTCTL_TIMEOUT=30 ckptctl_run restore "$T/bad" --json
		case $RC in
		0)
			restored=$((restored + 1))
			pid=$(json_get "$OUT" root_pid)
			log "  $what: restored as $pid (harmless), killing it"
			[[ -n $pid ]] && kill_tree "$pid"
			;;
		1)
			refused=$((refused + 1))
			[[ -s $ERR ]] || fail "$what: restore failed without a message"
			log "  $what: $(head -n 1 "$ERR" | cut -c1-160)"
			;;
		*) fail "$what: ckptctl restore exited $RC (crash or hang): $(cat "$ERR")" ;;
		esac
		grep -qiE 'killed by signal|sanitizer|segmentation' "$ERR" &&
			fail "$what: the restorer crashed: $(cat "$ERR")"
		poll_for 5 no_reaper_strays || fail "$what: processes left behind: $(reaper_strays | tr '\n' ' ')"
		# shellcheck disable=SC2046
		poll_for 5 gone $(awk '{print $1}' "$T/tree.before") || fail "$what: a pid of the tree is still in use"
		poll_for 3 no_stray_restorer || fail "$what: a ckpt-restore is still running"
	done
done
image_sums "$T/img" | diff -u "$T/sums.before" - || fail "the original images changed"
log "$((refused + restored)) forged checkpoints: $refused refused, $restored harmless and restored"

# Not a file at all, restored as root in process (ckptd copies a caller's
# images itself, test_ckptd_attack): a FIFO where an image or the
# inventory is expected is refused at once, not waited on for a writer;
# a symlink as the inventory (to an endless file) is not followed.
core=$(cd "$T/img" && ls core-*.img | head -n 1)
pages=$(cd "$T/img" && ls pages-*.img | head -n 1)
for f in "$core" "$pages" inventory.img inventory.img-symlink; do
	rm -rf "$T/bad"
	cp -a "$T/img" "$T/bad"
	rm "$T/bad/${f%-symlink}"
	if [[ $f == *-symlink ]]; then
		ln -s /dev/zero "$T/bad/${f%-symlink}"
		want="cannot open|Too many levels of symbolic links"
	else
		mkfifo "$T/bad/$f"
		want="not a regular file"
	fi
	CKPTCTL_TIMEOUT=20 ckptctl_run restore "$T/bad"
	((RC == 1)) || fail "$f not a regular file: ckptctl restore exited $RC (124: it waited): $(cat "$ERR")"
	grep -qE "$want" "$ERR" || fail "$f not a regular file: unclear refusal: $(cat "$ERR")"
	log "  $f: $(head -n 1 "$ERR" | cut -c1-160)"
	poll_for 5 no_reaper_strays || fail "$f: processes left behind: $(reaper_strays | tr '\n' ' ')"
done

# The program's own file, mapped, replaced by a FIFO after the dump: the
# restore's check of mapped files refuses it at once (it opened the path
# without O_NONBLOCK and waited for a writer).
cp "$WL/sleeper" "$T/sleeper-copy"
start_workload W5 "$T/w5.ready" -- "$T/sleeper-copy" wait4 "$T/w5.log" "$T/w5.ready" 600
ckpt_dump "$W5" "$T/img5"
assert_tree_gone "$W5"
rm "$T/sleeper-copy" && mkfifo "$T/sleeper-copy"
CKPTCTL_TIMEOUT=20 ckptctl_run restore "$T/img5"
((RC == 1)) || fail "mapped file replaced by a FIFO: ckptctl restore exited $RC (124: it waited): $(cat "$ERR")"
grep -q "sleeper-copy.*not a regular file" "$ERR" || fail "mapped FIFO: unclear refusal: $(cat "$ERR")"
log "  mapped file now a FIFO: $(head -n 1 "$ERR" | cut -c1-160)"
poll_for 5 no_reaper_strays || fail "mapped FIFO: processes left behind: $(reaper_strays | tr '\n' ' ')"

ckpt_restore "$T/img"
assert_same_tree "$T/tree.before" "$W4"
assert_tree_running "$W4"
pass
