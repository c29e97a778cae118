#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate-modes.sh - one short live migration in each mode (postcopy,
# precopy, hybrid, stop-and-copy, auto) of llama-infer at 1/64 through
# scripts/migrate-local, between two network namespaces (loopback where
# namespaces cannot be made): each must end with identical pages (digests
# and the workload's own verify) and the replay running on at the
# destination. The destination allocates the region's memory before it
# connects, and says so, unless --no-prealloc (one more post-copy run).
# Each side's JSON report has every field man/gmem-migrate.1 lists for it
# and no other (converged in every mode); stop-and-copy sends every page
# in the freeze; post-copy blocked the workload's threads for a while;
# auto says which mode it ran and why, after which round, on both sides.
# Exit 77 = skipped, with the reason.
set -euo pipefail

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	echo "usage: tests/migrate-modes.sh (run by make check; top_builddir," \
	     "top_srcdir may be set)"
	exit 0
fi
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}

skip() {
	echo "SKIP: $*"
	exit 77
}
for tool in jq socat ip; do
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
ns=mm$$
ns_up=0
cleanup() {
	[ "$ns_up" = 0 ] || "$top_srcdir/scripts/netns" down "$ns"
	rm -rf "$dir"
}
trap cleanup EXIT

# Namespaces if this machine allows them, else loopback (said, not skipped).
net=() rc=0
"$top_srcdir/scripts/netns" up "$ns" 2>"$dir/netns.err" || rc=$?
if [ "$rc" = 0 ]; then
	"$top_srcdir/scripts/netns" down "$ns"
	echo "hosts: two network namespaces joined by a veth pair"
else
	# Loopback must carry TCP for the fallback to mean anything.
	port=$((40000 + $$ % 20000))
	timeout 10 socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" \
		OPEN:/dev/null,wronly 2>/dev/null &
	sleep 0.3
	echo probe | timeout 5 socat -u - "TCP:127.0.0.1:$port" 2>/dev/null ||
		skip "no network namespaces ($(cat "$dir/netns.err")) and no loopback TCP"
	wait || true
	echo "hosts: loopback (network namespaces: $(cat "$dir/netns.err"))"
	net=(--loopback)
fi

failed=0
fail() {
	echo "FAIL: $mode: $*"
	sed 's/^/  stderr: /' "$dir/err"
	[ -s "$dir/report" ] && sed 's/^/  report: /' "$dir/report"
	failed=1
}

# check JQ-EXPR WHAT: the report must satisfy JQ-EXPR.
check() {
	jq -e "$1" "$dir/report" >/dev/null 2>&1 || { fail "$2"; return 1; }
}

# The report's fields as man/gmem-migrate.1 (OUTPUT) lists them, each with
# where it appears: all, dest, precopy (that mode and auto), auto, qmp
# (only with --qmp, which this test does not run) or failure.
fields=$(awk '
/^\.SH OUTPUT/ { on = 1; next }
/^\.SH / { on = 0 }
!on { next }
/^\.TP/ { want = 1; next }
want == 1 && /^\.BR? / { sub(/^\.BR? /, ""); gsub(/"[^"]*"/, " "); names = $0; want = 2; next }
want == 2 {
	cls = "all"
	if ($0 ~ /^\.IR? dest/) cls = "dest"
	else if ($0 ~ /^\.IR? precopy/) cls = "precopy"
	else if ($0 ~ /^\.IR? auto/) cls = "auto"
	else if ($0 ~ /^On failure only/) cls = "failure"
	else if ($0 ~ /^With$/) cls = "qmp"
	n = split(names, a, " ")
	for (i = 1; i <= n; i++) printf "%s %s\n", a[i], cls
	want = 0
}' "$top_srcdir/man/gmem-migrate.1" |
	jq -R -s 'split("\n") | map(select(. != "") | split(" ") | {(.[0]): .[1]}) | add')
[ "$(jq length <<<"$fields")" -ge 30 ] ||
	{ echo "FAIL: man/gmem-migrate.1 lists no report fields"; exit 1; }

# fields_check: both sides' reports carry every field the man page lists
# for them, and only those; converged is a boolean, true outside precopy.
fields_check() {
	local bad
	bad=$(jq -r --argjson f "$fields" '
	  def side($r; $dest):
	    ($r | keys) as $k |
	    ([$f | to_entries[] | select(.value == "all" or
	        ($dest and .value == "dest") or
	        (.value == "precopy" and
	         ($r.mode == "precopy" or $r.mode == "auto")) or
	        (.value == "auto" and $r.mode == "auto")) | .key] - $k
	     | map("missing \(.)")) +
	    ($k - [$f | to_entries[] | select(.value != "failure" and
	        .value != "qmp" and
	        ($dest or .value != "dest") and
	        (.value != "precopy" or $r.mode == "precopy" or
	         $r.mode == "auto") and
	        (.value != "auto" or $r.mode == "auto")) | .key]
	     | map("unexpected \(.)")) +
	    (if ($r.converged | type) != "boolean" or
	        ($r.mode != "precopy" and $r.converged != true)
	     then ["converged \($r.converged)"] else [] end);
	  (side(del(.source); true) | map("dest: " + .)) +
	  (side(.source; false) | map("source: " + .)) | .[]' "$dir/report")
	[ -z "$bad" ] || { fail "report fields against the man page: $(echo $bad)"; return 1; }
}

for run in postcopy precopy hybrid stop-and-copy auto postcopy:--no-prealloc; do
	mode=${run%%:*} extra=()
	[ "$run" = "$mode" ] || extra=("${run#*:}")
	start=$(date +%s)
	rc=0
	"$top_srcdir/scripts/migrate-local" --build "$top_builddir" \
		--trace llama-infer --scale 1/64 --mode "$mode" --warmup 1 \
		--quiet "${net[@]}" -- --wait-ms 20000 --observe-ms 2000 \
		"${extra[@]}" >"$dir/report" 2>"$dir/err" || rc=$?
	if [ "$rc" != 0 ]; then
		fail "migrate-local exited $rc"
		continue
	fi
	check 'type == "object"' "no JSON report" &&
	check '.ok == true and .mode == "'"$mode"'"' "report not ok" &&
	check '.scale == "1/64" and .trace == "llama-infer"' "wrong trace" &&
	check '.mismatches == 0 and (.source.mismatches // 0) == 0' \
		"page digests differ" &&
	check '.verify.pages_checked > 0 and .verify.mismatches == 0' \
		"the workload's verify found differing pages" &&
	check '.step_time.after.count > 0' \
		"the replay did not go on at the destination" &&
	fields_check &&
	if [ "$mode" = postcopy ]; then
		check '.freeze_ms > 0' "postcopy report has no freeze_ms" &&
		check '.blocked_ms > 0 and .blocked_threads >= 1 and
		       .blocked_top[0].tid == .blocked_max_tid and
		       .blocked_top[0].ms == .blocked_max_ms and
		       .blocked_top[0].faults > 0' \
			"postcopy report has no blocked time of the workload's threads"
	elif [ "$mode" = stop-and-copy ]; then
		check '.freeze_pages == .nr_pages and .source.freeze_pages == .nr_pages and .nr_pages > 0' \
			"stop-and-copy did not send every page in the freeze"
	elif [ "$mode" = auto ]; then
		check '.switch.round == .rounds and .rounds >= 1 and
		       .source.ran == .ran and .source.switch == .switch and
		       ((.ran == "precopy" and .switch.reason == "converged") or
		        (.ran == "hybrid" and .freeze_pages == 0 and
		         (.switch.reason == "not converging" or
		          .switch.reason == "round limit")))' \
			"auto's report does not say which mode it ran and why"
	fi &&
	if [ ${#extra[@]} = 0 ]; then
		grep -q "dest: page cache of [0-9]* MiB allocated" "$dir/err" ||
			{ fail "the destination did not allocate its memory ahead"; false; }
	elif grep -q "page cache of" "$dir/err"; then
		fail "--no-prealloc allocated the memory all the same"; false
	fi &&
	jq -r --arg t $(($(date +%s) - start)) --arg x "${extra[*]:+ ${extra[*]}}" '"ok: \(.mode)\($x)\(if .ran then " (ran \(.ran) after round \(.switch.round): \(.switch.reason))" else "" end): freeze \(.freeze_ms // "-") ms, \(.verify.pages_checked) pages verified, \(.step_time.after.count) steps after, \($t) s"' \
		"$dir/report"
done
[ "$failed" = 0 ] && echo PASS
exit "$failed"
