#!/bin/sh
# SPDX-License-Identifier: MIT
# trace-capture.sh - runs tests/trace-capture.py, the unit tests of the
# trace capture module (python/gmem_trace.py) and its round trip through
# gmem-replay. Exit 77 = skipped, with the reason.
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
GMEM_REPLAY=$top_builddir/bench/gmem-replay
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
[ -x "$GMEM_REPLAY" ] || { echo "SKIP: $GMEM_REPLAY not built"; exit 77; }
PYTHONPATH=$top_srcdir/python${PYTHONPATH:+:$PYTHONPATH}
# No __pycache__ in the source tree.
PYTHONDONTWRITEBYTECODE=1
export GMEM_REPLAY PYTHONPATH PYTHONDONTWRITEBYTECODE
exec python3 "$top_srcdir/tests/trace-capture.py"
