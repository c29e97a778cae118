#!/bin/sh
# SPDX-License-Identifier: MIT
# libgmem.so exports exactly the functions gmem.h declares, each under the
# GMEM_1 version node and nothing else (openEuler ships an unrelated
# libgmem: the two must never clash at the symbol level), with a versioned
# soname.
set -u
builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
lib=$builddir/libgmem/.libs/libgmem.so
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

for tool in nm readelf; do
	command -v $tool >/dev/null ||
		{ echo "SKIP: no $tool (binutils)"; exit 77; }
done
[ -f "$lib" ] || { echo "SKIP: no shared library built ($lib)"; exit 77; }
fail=0

# Dynamic symbols defined here: "gmem_x@@GMEM_1", plus the node itself.
nm -D --defined-only "$lib" | awk '{ print $3 }' | sort >"$tmp/exported"
grep -v -E '^(gmem_[a-z0-9_]+@@GMEM_1|GMEM_1)$' "$tmp/exported" >"$tmp/stray"
if [ -s "$tmp/stray" ]; then
	echo "FAIL: exported outside gmem_*@@GMEM_1:"
	cat "$tmp/stray"
	fail=1
fi

# Function declarations of the header (the name before its "(").
sed -n 's/^[a-z][^(]*[ *]\(gmem_[a-z0-9_]*\)(.*/\1/p' \
	"$srcdir/libgmem/include/gmem.h" | sort -u >"$tmp/declared"
sed -n 's/@@GMEM_1$//p' "$tmp/exported" >"$tmp/names"
if ! diff "$tmp/declared" "$tmp/names" >"$tmp/diff"; then
	echo "FAIL: declared in gmem.h (<) vs exported (>):"
	cat "$tmp/diff"
	fail=1
fi
[ -s "$tmp/declared" ] || { echo "FAIL: no declarations found"; fail=1; }

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
case $soname in
libgmem.so.[0-9]*) ;;
*) echo "FAIL: soname is \"$soname\", not libgmem.so.N"; fail=1 ;;
esac
echo "$(wc -l <"$tmp/names") symbols, all gmem_*@@GMEM_1; soname $soname"
exit $fail
