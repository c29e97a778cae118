#!/bin/bash
# SPDX-License-Identifier: MIT
# replay-traces.sh - where gmem-replay finds a trace: a name is looked up in
# the source tree's traces/ first (no environment needed), then the
# installed traces, then $GMEM_TRACES; a path is used as it is; --help lists
# the folders in that order; a name found nowhere is one line naming every
# folder searched. Exit 77 = skipped, with the reason.
set -euo pipefail

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
replay=$top_builddir/bench/gmem-replay
# The folder as the build compiled it in (abs_top_srcdir, not normalised:
# make distcheck builds in _build/sub with ../.. in it).
src_traces=$top_srcdir/traces

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}
command -v jq >/dev/null || skip "jq not installed (scripts/setup)"
[ -x "$replay" ] || skip "$replay not built"
[ -n "${tracesdir:-}" ] || skip "tracesdir not set (run by make check)"
if [ ! -r /dev/userfaultfd ] && [ "$(id -u)" != 0 ] &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
	skip "no userfaultfd for this user"
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
unset GMEM_TRACES

# run NAME ARGS...: one replay step of trace ARGS at 1/1024; report in NAME.
run() {
	local out=$1
	shift
	"$replay" --scale 1/1024 --steps 1 --quiet "$@" >"$dir/$out.json" \
		2>"$dir/$out.err"
}

# --help: the source tree, the installed folder, $GMEM_TRACES, in order.
"$replay" --help >"$dir/help" || fail "--help exited $?"
sed -n '/^A trace name NAME is/,$p' "$dir/help" | tail -n +2 >"$dir/dirs"
printf '  %s\n' "$src_traces" "$tracesdir" '$GMEM_TRACES (not set)' >"$dir/want"
diff -u "$dir/want" "$dir/dirs" || fail "--help does not list the trace folders in order"
GMEM_TRACES=$dir/mine "$replay" --help | tail -n 1 | grep -qxF "  $dir/mine" ||
	fail "--help does not show \$GMEM_TRACES's value"

# A name, no environment: found in the source tree.
run tree --trace gpt2-train || fail "--trace gpt2-train: $(cat "$dir/tree.err")"
jq -e '.trace == "gpt2-train" and .trace_pages == 6409728 and .steps_done == 1' \
	"$dir/tree.json" >/dev/null || fail "gpt2-train: $(cat "$dir/tree.json")"

# $GMEM_TRACES: a trace of its own is found there, but the source tree's
# come first (a broken gpt2-train there is never read).
mkdir "$dir/mine"
cp "$src_traces/llama-infer.trace.gz" "$dir/mine/mine.trace.gz"
echo garbage >"$dir/mine/gpt2-train.trace.gz"
GMEM_TRACES=$dir/mine run env --trace mine ||
	fail "GMEM_TRACES=$dir/mine --trace mine: $(cat "$dir/env.err")"
jq -e '.trace == "mine" and .trace_pages == 702464' "$dir/env.json" >/dev/null ||
	fail "mine: $(cat "$dir/env.json")"
GMEM_TRACES=$dir/mine run first --trace gpt2-train ||
	fail "\$GMEM_TRACES came before the source tree: $(cat "$dir/first.err")"

# A path is used as it is, not looked up.
run path --trace "$dir/mine/mine.trace.gz" || fail "a path: $(cat "$dir/path.err")"
jq -e '.trace == "mine"' "$dir/path.json" >/dev/null || fail "path: wrong trace"
rc=0
run nopath --trace ./traces/llama-infer || rc=$?
[ "$rc" = 2 ] && grep -q '^gmem-replay: ./traces/llama-infer: No such file' "$dir/nopath.err" ||
	fail "a path with '/' was looked up as a name (exit $rc): $(cat "$dir/nopath.err")"

# Found nowhere: exit 2, one line naming every folder searched.
rc=0
run none --trace mine || rc=$?
[ "$rc" = 2 ] || fail "a missing trace exited $rc, not 2"
want="gmem-replay: trace 'mine' not found: no mine.trace.gz in $src_traces, $tracesdir, \$GMEM_TRACES (not set)"
[ "$(cat "$dir/none.err")" = "$want" ] ||
	fail "missing trace: got '$(cat "$dir/none.err")', want '$want'"
rc=0
GMEM_TRACES=$dir run none2 --trace mine || rc=$?
[ "$rc" = 2 ] && [ "$(cat "$dir/none2.err")" = "gmem-replay: trace 'mine' not found: no mine.trace.gz in $src_traces, $tracesdir, $dir" ] ||
	fail "missing trace with GMEM_TRACES: $(cat "$dir/none2.err")"
echo "PASS: names from $src_traces, then $tracesdir, then \$GMEM_TRACES; paths as they are"
