#!/bin/bash
# SPDX-License-Identifier: MIT
# The bash completion of ckptctl (packaging/bash-completion/ckptctl):
# commands, each command's options, pids for dump, directories for restore.
set -u
SRC=${CKPT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BC=/usr/share/bash-completion/bash_completion
[[ -r $BC ]] || { echo "FAIL: $BC missing (packaging/install-deps.sh installs bash-completion)"; exit 1; }
# shellcheck disable=SC1090
. "$BC"
# shellcheck disable=SC1091
. "$SRC/packaging/bash-completion/ckptctl"

fails=0
# complete LINE: COMPREPLY for the last word of LINE (a trailing space: a new word)
complete_line()
{
	read -r -a COMP_WORDS <<<"$1"
	[[ $1 == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$1
	COMP_POINT=${#1}
	COMPREPLY=()
	_ckptctl ckptctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect()
{
	local line=$1 want=$2 got
	got=$(complete_line "$line")
	if ! grep -qxF -- "$want" <<<"$got"; then
		echo "FAIL: '$line<TAB>' does not offer '$want' (got: $(echo $got))"
		fails=$((fails + 1))
	fi
}
refuse()
{
	local line=$1 bad=$2 got
	got=$(complete_line "$line")
	if grep -qxF -- "$bad" <<<"$got"; then
		echo "FAIL: '$line<TAB>' offers '$bad'"
		fails=$((fails + 1))
	fi
}

expect "ckptctl " dump
expect "ckptctl " restore
expect "ckptctl re" restore
refuse "ckptctl re" dump
expect "ckptctl --" --socket
expect "ckptctl dump -" --leave-running
expect "ckptctl dump -" --tcp-close
expect "ckptctl dump -" --pre-dump
expect "ckptctl dump -" --parent
expect "ckptctl -v dump -" --json
expect "ckptctl dump " "$$"
expect "ckptctl restore -" --shell-job
expect "ckptctl restore --cg" --cgroups=caller
expect "ckptctl restore --n" --new-pidns
expect "ckptctl restore --l" --lazy
expect "ckptctl pre" preserve
expect "ckptctl preserve --" --restore-all
expect "ckptctl preserve " "$$"
expect "ckptctl dump --c" --check-only
expect "ckptctl ru" run
expect "ckptctl run --s" --signal
expect "ckptctl run --signal U" USR1
refuse "ckptctl restore -" --leave-running
T=$(mktemp -d) && mkdir "$T/ckpt.dir" && touch "$T/file"
expect "ckptctl restore $T/ck" "$T/ckpt.dir"
refuse "ckptctl restore $T/f" "$T/file"
expect "ckptctl dump 1 -D $T/ck" "$T/ckpt.dir"
expect "ckptctl --socket $T/fi" "$T/file"
expect "ckptctl --socket $T/file " dump
rm -rf "$T"
((fails == 0)) && echo "PASS completion" || exit 1
