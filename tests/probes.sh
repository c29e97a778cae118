#!/bin/sh
# SPDX-License-Identifier: MIT
# libgmem.so carries a USDT note (provider gmem) for each trace point that
# docs/probes.md documents, and no undocumented one. Fails naming each
# probe missing on either side; skips in a build without <sys/sdt.h>.
set -u
builddir=${top_builddir:-.}
srcdir=${top_srcdir:-.}
lib=$builddir/libgmem/.libs/libgmem.so
doc=$srcdir/docs/probes.md
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM

command -v readelf >/dev/null || { echo "SKIP: no readelf (binutils)"; exit 77; }
[ -f "$lib" ] || { echo "SKIP: no shared library built ($lib)"; exit 77; }
grep -q '^#define HAVE_SDT 1' "$builddir/config.h" ||
	{ echo "SKIP: built without sys/sdt.h (apt-get install systemtap-sdt-dev)"; exit 77; }

# The documented probes: the table's rows "| `gmem:NAME` |".
sed -n 's/^| `gmem:\([a-z_]*\)`.*/\1/p' "$doc" | sort -u >"$tmp/want"
[ -s "$tmp/want" ] || { echo "FAIL: $doc lists no probes"; exit 1; }
readelf -n "$lib" | awk '
/^ *Provider: / { prov = $2 }
/^ *Name: / && prov == "gmem" { print $2 }' | sort -u >"$tmp/have"

fail=0
for p in $(comm -23 "$tmp/want" "$tmp/have"); do
	echo "FAIL: probe gmem:$p is documented in docs/probes.md but not in libgmem.so"
	fail=1
done
for p in $(comm -13 "$tmp/want" "$tmp/have"); do
	echo "FAIL: probe gmem:$p is in libgmem.so but not documented in docs/probes.md"
	fail=1
done
echo "$(wc -l <"$tmp/have") gmem probes in libgmem.so, $(wc -l <"$tmp/want") documented"
exit $fail
