#!/bin/sh
# SPDX-License-Identifier: MIT
# The user documentation stands on its own: README.md stays short (about
# 300 lines) with no table row or paragraph line of a page's length; README
# and docs/ speak of the code as it is (no measurement history) and need
# nothing beside the checkout; README's C example is the one in examples/
# that make check builds and runs.
set -u
srcdir=${top_srcdir:-.}
readme=$srcdir/README.md
fail=0

lines=$(wc -l <"$readme")
[ "$lines" -le 320 ] || { echo "FAIL: README.md has $lines lines (at most 320)"; fail=1; }

long=$(awk 'length > 400 { print FILENAME ":" FNR ": " length " characters" }' "$readme")
[ -z "$long" ] || { echo "FAIL: lines over 400 characters:"; echo "$long"; fail=1; }

for f in "$readme" "$srcdir"/docs/*.md; do
	[ -f "$f" ] || continue
	hits=$(grep -n -i -E 'sitting|the library before|earlier session|this session|\.\./shared' "$f")
	[ -z "$hits" ] || { echo "FAIL: ${f#"$srcdir"/}: history words or a path outside the checkout:"; echo "$hits"; fail=1; }
done

# The C block after the line naming examples/lazy-restore.c: each of its
# lines must be a line of that file.
example=$srcdir/examples/lazy-restore.c
awk '/examples\/lazy-restore\.c/ { want = 1 } want && /^```c/ { inblk = 1; next }
	inblk && /^```/ { exit } inblk' "$readme" >"${TMPDIR:-/tmp}/docs-example.$$"
if [ ! -s "${TMPDIR:-/tmp}/docs-example.$$" ]; then
	echo "FAIL: README.md shows no C block after naming examples/lazy-restore.c"; fail=1
else
	while IFS= read -r l; do
		[ -z "$l" ] || grep -q -x -F -- "$l" "$example" ||
			{ echo "FAIL: README's example line not in examples/lazy-restore.c: $l"; fail=1; }
	done <"${TMPDIR:-/tmp}/docs-example.$$"
fi
rm -f "${TMPDIR:-/tmp}/docs-example.$$"
echo "README.md: $lines lines"
exit $fail
