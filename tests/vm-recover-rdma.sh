#!/bin/bash
# SPDX-License-Identifier: MIT
# Post-copy recovery over RDMA (soft-RoCE in the VM rig: make check-vm):
# gmem-migrate --transport rdma moves llama-infer post-copy while the
# interface under the RDMA device goes down, until the destination reports
# the session paused (its reads failed) and 3 s more, so that the
# destination's tries meet a dead link, and up again. The session must
# resume on new connections and read lanes, both sides count one recovery
# or more, every digest is equal and the workload's own verify finds every
# page as written. Needs root (ip link); exit 77 (skipped) without an RDMA
# device.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-.}
tmp=$(mktemp -d) || exit 99
netdev= mig=
cleanup() {
	[ -n "$netdev" ] && ip link set dev "$netdev" up 2>/dev/null
	[ -n "$mig" ] && kill "$mig" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
dev_ip=$("$top_srcdir/scripts/rdma-addr" 2>"$tmp/why") || skip "$(cat "$tmp/why")"
[ "$(id -u)" = 0 ] || skip "taking a link down needs root"
dev=${dev_ip% *}
link=$(rdma link show | awk -v d="$dev/" 'index($2, d) == 1 { print; exit }')
netdev=$(echo "$link" | sed -n 's/.* netdev \([^ ]*\).*/\1/p')
[ -n "$netdev" ] || skip "no interface under $dev ($link)"
echo "RDMA device $dev on $netdev, ${dev_ip#* }"

port_state=/sys/class/infiniband/$dev/ports/1/state
port_active() { grep -q ACTIVE "$port_state"; }

paused_or_gone() {
	grep -q '^paused' "$tmp/err" || ! kill -0 "$mig" 2>/dev/null
}

# until SECONDS CMD...: polls CMD every 0.1 s; false when time ran out.
until_true() {
	local n=$(($1 * 10))
	shift
	for ((; n > 0; n--)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

timeout 300 "$top_srcdir/scripts/migrate-local" --build "$top_builddir" \
	--ip "${dev_ip#* }" --trace llama-infer --scale 1/16 --warmup 1 \
	--mode postcopy -- --transport rdma --recover-ms 120000 \
	--wait-ms 120000 >"$tmp/report" 2>"$tmp/err" &
mig=$!
fail=0
if until_true 200 grep -q '^post-copy' "$tmp/err"; then
	ip link set dev "$netdev" down
	echo "$(date +%T) $netdev down"
	until_true 120 paused_or_gone
	if ! grep -q '^paused' "$tmp/err"; then
		echo "FAIL: the destination never paused (post-copy over" \
			"before the link went down?)"
		fail=1
	fi
	# Down a while longer: the destination's tries meet a dead link.
	sleep 3
	ip link set dev "$netdev" up
	echo "$(date +%T) $netdev up"
	# The recovery does not wait for this; it tells a rig whose port
	# never comes back from a recovery that fails.
	until_true 60 port_active ||
		{ echo "FAIL: $dev's port not ACTIVE within 60 s"; fail=1; }
	echo "$(date +%T) $dev port $(cat "$port_state")"
else
	echo "FAIL: post-copy never began"
	fail=1
fi
wait "$mig"
rc=$?
mig=
cat "$tmp/err"
echo "report: $(jq -c '{ok, transport, recoveries, paused_ms, urgent_pages,
	pushed_pages, mismatches, verify: .verify.mismatches,
	source: {recoveries: .source.recoveries, transport: .source.transport}}' \
	"$tmp/report" 2>/dev/null)"
check() {
	jq -e "$1" "$tmp/report" >/dev/null 2>&1 || { echo "FAIL: $2"; fail=1; }
}
[ "$rc" = 0 ] || { echo "FAIL: migrate-local exited $rc"; fail=1; }
check '.ok == true' "the migration did not complete"
check '.transport == "rdma" and .source.transport == "rdma"' "not over RDMA"
check '.recoveries >= 1 and .source.recoveries >= 1' "no recovery on both sides"
check '.mismatches == 0 and .urgent_pages + .pushed_pages + .local_pages == .nr_pages' \
	"pages missing or differing"
check '.verify.pages_checked > 0 and .verify.mismatches == 0' \
	"the workload's verify found differing pages"
[ "$fail" = 0 ] && echo PASS
exit "$fail"
