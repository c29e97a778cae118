#!/bin/sh
# SPDX-License-Identifier: MIT
# python-gmem.sh - runs tests/python-gmem.py, the unit tests of the gmem
# package's torch-free parts, against the libgmem of this build. Exit 77 =
# skipped, with the reason.
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
GMEM_LIB_DIR=$top_builddir/libgmem/.libs
[ -e "$GMEM_LIB_DIR/libgmem.so" ] || { echo "SKIP: libgmem not built"; exit 77; }
# A sanitizer's runtime must be loaded first, which python3 does not do.
ldd "$GMEM_LIB_DIR/libgmem.so" | grep -qE 'lib(a|t|ub)san' &&
	{ echo "SKIP: libgmem built with a sanitizer: python3 cannot load it"; exit 77; }
PYTHONPATH=$top_srcdir/python${PYTHONPATH:+:$PYTHONPATH}
PYTHONDONTWRITEBYTECODE=1
export GMEM_LIB_DIR PYTHONPATH PYTHONDONTWRITEBYTECODE
exec python3 "$top_srcdir/tests/python-gmem.py"
