#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate-stall.sh - the report's stall_ms is the stall the workload had,
# however short its steps and however late the report is read. One post-copy
# migration of gpt2-train at 1/64 (130 ms steps) through a link that holds
# what the source sends 100 ms (bench/delay-proxy.py), read 10 s after the
# end (longer than the workload's ring of its last 64 steps):
#  1. slow post-copy: every fault waits 100 ms more, so stall_ms must exceed
#     freeze_ms by at least that delay;
#  2. an independent observer (tests/progress-watch.py) queries the
#     destination workload in a loop and times the longest stretch its
#     progress counter stood still: stall_ms must be at least that (less a
#     10 ms sampling slack), and the report's max_gap_ms, the longest time
#     between two writes, at most that (plus the slack).
# Exit 77 = skipped, with the reason.
set -euo pipefail
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}

skip() {
	echo "SKIP: $*"
	exit 77
}
for tool in jq socat python3; do
	command -v "$tool" >/dev/null || skip "$tool not installed (scripts/setup)"
done
for f in bench/gmem-replay pager/gmem-migrate; do
	[ -x "$top_builddir/$f" ] || skip "$top_builddir/$f not built"
done
if [ ! -r /dev/userfaultfd ] && [ "$(id -u)" != 0 ] &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
	skip "no userfaultfd for this user"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
delay=100

rc=0
"$top_srcdir/scripts/migrate-local" --build "$top_builddir" \
	--trace gpt2-train --scale 1/64 --mode postcopy --warmup 1 --quiet \
	--link-delay "$delay" \
	--watch "python3 $top_srcdir/tests/progress-watch.py $dir/watch" \
	-- --wait-ms 30000 --observe-ms 10000 >"$dir/report" 2>"$dir/err" || rc=$?
if [ "$rc" != 0 ] || ! jq -e '.ok == true' "$dir/report" >/dev/null 2>&1; then
	echo "FAIL: migrate-local exited $rc"
	sed 's/^/  /' "$dir/err" "$dir/report"
	exit 1
fi
[ -s "$dir/watch" ] || { echo "FAIL: the observer wrote nothing"; exit 1; }
jq -c '{freeze_ms, stall_ms, max_gap_ms, first_step_ms, postcopy_s}' "$dir/report"
jq -c . "$dir/watch"

failed=0
jq -e --argjson d "$delay" '.stall_ms >= .freeze_ms + $d' "$dir/report" >/dev/null || {
	echo "FAIL: slow post-copy: stall_ms does not exceed freeze_ms by the $delay ms delay"
	failed=1
}
still=$(jq .max_still_ms "$dir/watch")
jq -e '.samples > 100' "$dir/watch" >/dev/null ||
	{ echo "FAIL: the observer sampled too rarely"; failed=1; }
jq -e --argjson s "$still" '.stall_ms >= $s - 10' "$dir/report" >/dev/null || {
	echo "FAIL: observer: the workload stood still $still ms, more than stall_ms"
	failed=1
}
jq -e --argjson s "$still" '.max_gap_ms != null and .max_gap_ms <= $s + 10' \
	"$dir/report" >/dev/null || {
	echo "FAIL: observer: max_gap_ms missing or longer than the $still ms the workload stood still"
	failed=1
}
[ "$failed" = 0 ] && echo PASS
exit "$failed"
