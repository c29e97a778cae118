#!/bin/sh
# SPDX-License-Identifier: MIT
# man/gmem.3 names every function that gmem.h declares, so that the map of
# the API a user reads first leaves none out. Fails naming each one missing.
set -u
srcdir=${top_srcdir:-.}
header=$srcdir/libgmem/include/gmem.h
page=$srcdir/man/gmem.3
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

# Function declarations of the header (the name before its "("), as
# tests/exported-symbols.sh reads them.
sed -n 's/^[a-z][^(]*[ *]\(gmem_[a-z0-9_]*\)(.*/\1/p' "$header" |
	sort -u >"$tmp/declared"
[ -s "$tmp/declared" ] || { echo "FAIL: no declarations found in $header"; exit 1; }

# A function is listed when the page names it as ".BR name ()" or "name()".
fail=0
while read -r fn; do
	grep -q -E "(^\.BR? $fn \(\)|\\\\fB$fn\\\\fP\(\)|(^|[^a-z0-9_])$fn\(\))" "$page" ||
		{ echo "FAIL: $fn is declared in gmem.h but missing from man/gmem.3"; fail=1; }
done <"$tmp/declared"
echo "$(wc -l <"$tmp/declared") functions declared in gmem.h, checked in man/gmem.3"
exit $fail
