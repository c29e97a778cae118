#!/bin/bash
# SPDX-License-Identifier: MIT
# gmem-migrate --transport rdma end to end on a real RDMA device (soft-RoCE
# in the VM rig: make check-vm): llama-infer at 1/64 moves post-copy, then
# hybrid, between two gmem-replay workloads through the device, by
# scripts/migrate-local.
# Both sides' reports must say RDMA and the destination's find every
# digest equal, and the workload's own verify every page as written. Exit 77
# (skipped) with no RDMA device.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

dev_ip=$("$top_srcdir/scripts/rdma-addr" 2>"$tmp/why") ||
	{ echo "SKIP: $(cat "$tmp/why")"; exit 77; }
fail=0
check() {
	jq -e "$1" "$tmp/report" >/dev/null 2>&1 || { echo "FAIL: $mode: $2"; fail=1; }
}
# hybrid: pre-copy leaves most pages valid, the push reads only the few
# pages written since, and the region's tail is valid (a last push read
# that went unsignalled there was never reaped, and the destination
# waited for its pages for ever).
for mode in postcopy hybrid; do
	timeout 150 "$top_srcdir/scripts/migrate-local" --build "$top_builddir" \
		--ip "${dev_ip#* }" --trace llama-infer --scale 1/64 --warmup 1 \
		--mode "$mode" --quiet -- --transport rdma --observe-ms 1000 \
		--wait-ms 20000 >"$tmp/report" 2>"$tmp/err"
	rc=$?
	cat "$tmp/err"
	echo "$mode: $(jq -c '{ok, transport, freeze_ms, urgent_pages,
		pushed_pages, local_pages, mismatches,
		verify: .verify.mismatches}' "$tmp/report" 2>/dev/null)"
	[ "$rc" = 0 ] || { echo "FAIL: $mode: migrate-local exited $rc"; fail=1; }
	check '.ok == true' "the migration did not complete"
	check '.transport == "rdma" and .source.transport == "rdma"' \
		"not over RDMA (${dev_ip% *})"
	check '.mismatches == 0 and .urgent_pages + .pushed_pages + .local_pages == .nr_pages' \
		"pages missing or differing"
	check '.verify.pages_checked > 0 and .verify.mismatches == 0' \
		"the workload's verify found differing pages"
	[ "$mode" = postcopy ] ||
		check '.local_pages > 0' "pre-copy left no page valid"
done
[ "$fail" = 0 ] && echo PASS
exit "$fail"
