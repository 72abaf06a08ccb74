#!/bin/bash
# SPDX-License-Identifier: MIT
# docs/fidelity.md is kept current by the tests: each row of its tables
# names in its last column the tests that show it (test_NAME:
# tests/e2e/test_NAME.sh, check_NAME: tests/unit/check_NAME.c), each of
# which must exist; a row without a test ("—") must say that the state is
# refused or is a known gap (not restored), never claim it silently.
set -u
SRC=${CKPT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DOC=$SRC/docs/fidelity.md
[[ -r $DOC ]] || { echo "FAIL: $DOC missing"; exit 1; }

fails=0 rows=0 tested=0
while IFS= read -r line; do
	# table rows, not the header or the separator
	[[ $line == '| '* ]] || continue
	[[ $line == '| state |'* || $line =~ ^\|[-\ |]+\|$ ]] && continue
	rows=$((rows + 1))
	body=${line%|}
	body=${body% }
	last=${body##*| }
	what=${line:2:70}
	names=$(grep -oE '\b(test|check)_[a-z0-9_]+' <<<"$last" | sort -u)
	if [[ -z $names ]]; then
		if ! grep -qiE 'refused|not restored|known gap' <<<"$line"; then
			echo "FAIL: row without a test that is neither refused nor a known gap: $what"
			fails=$((fails + 1))
		fi
		continue
	fi
	tested=$((tested + 1))
	for n in $names; do
		if [[ ! -e $SRC/tests/e2e/$n.sh && ! -e $SRC/tests/unit/$n.c ]]; then
			echo "FAIL: row '$what' names $n, which is no test"
			fails=$((fails + 1))
		fi
	done
done <"$DOC"
((rows >= 50)) || { echo "FAIL: only $rows rows read from $DOC"; exit 1; }
echo "$rows rows, $tested with tests, $fails problems"
((fails == 0))
