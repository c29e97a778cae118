#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate-placement.sh - gmem-migrate dest places the region on a NUMA node
# (--numa-node, --pci) and says so, refuses a bad --pci before touching the
# workloads, and a migration of 2 MiB pages (gmem-replay --page-size 2m)
# verifies on both sides. Loopback, llama-infer at 1/64 (43 MiB; 1/256 in
# 2 MiB pages: 6 huge pages a side).
# Exit 77 = skipped, with the reason.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
replay=$top_builddir/bench/gmem-replay
migrate=$top_builddir/pager/gmem-migrate

skip() {
	echo "SKIP: $*"
	exit 77
}
command -v jq >/dev/null || skip "jq not installed (scripts/setup)"
[ -x "$replay" ] && [ -x "$migrate" ] || skip "gmem-replay or gmem-migrate not built"
if [ ! -r /dev/userfaultfd ] && [ "$(id -u)" != 0 ] &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
	skip "no userfaultfd for this user"
fi

dir=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	tail -n 5 "$dir"/*.err 2>/dev/null || true
	exit 1
}

# start_replay NAME ARGS...: a gmem-replay with its socket at $dir/NAME.sock.
start_replay() {
	local name=$1
	shift
	"$replay" --trace llama-infer --scale "$scale" --quiet \
		--control "$dir/$name.sock" "$@" >"$dir/$name.json" 2>"$dir/$name.err" &
	pids+=($!)
	wait_until 60 "$!" test -S "$dir/$name.sock" && return 0
	fail "gmem-replay $name: no control socket after 60 s"
}

# migrate WHAT PAGE_SIZE DEST_OPTS...: one post-copy migration, verified.
migrate() {
	local what=$1 psize=$2 port=$((20000 + RANDOM % 20000)) rc=0
	shift 2
	rm -f "$dir"/*.sock
	start_replay src --page-size "$psize"
	start_replay dst --page-size "$psize" --incoming
	timeout 120 "$migrate" source --control "$dir/src.sock" \
		--listen "127.0.0.1:$port" --quiet >"$dir/src.out" 2>"$dir/msrc.err" &
	pids+=($!)
	timeout 120 "$migrate" dest --control "$dir/dst.sock" --quiet --verify \
		--connect "127.0.0.1:$port" --observe-ms 300 "$@" \
		>"$dir/dst.out" 2>"$dir/mdst.err" || rc=$?
	[ "$rc" = 0 ] || fail "$what: gmem-migrate dest exit $rc"
	jq -e '.ok and .verify.mismatches == 0' "$dir/dst.out" >/dev/null ||
		fail "$what: report not ok"
	echo "ok: $what"
}

# A PCI device and the node the dest must pick for it.
pci= want=
for d in /sys/bus/pci/devices/*; do
	[ -r "$d/numa_node" ] || continue
	pci=$(basename "$d") want=$(cat "$d/numa_node")
	break
done
nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l || true)
scale=1/64

if ! grep -q "define HAVE_NUMA 1" "$top_builddir/config.h"; then
	echo "skip: placement: built without libnuma (configure --without-numa)"
elif [ ! -d /sys/devices/system/node/node0 ]; then
	echo "skip: placement: no NUMA node in sysfs"
else
	migrate "--numa-node 0" 4k --numa-node 0
	grep -q "region and fault handlers on NUMA node 0" "$dir/mdst.err" ||
		fail "--numa-node 0: placement not reported"
	if [ -n "$pci" ] && { [ "$want" -ge 0 ] || [ "$nodes" = 1 ]; }; then
		[ "$want" -ge 0 ] || want=0
		migrate "--pci $pci" 4k --pci "$pci"
		grep -q "on NUMA node $want" "$dir/mdst.err" ||
			fail "--pci $pci: node $want not reported"
	else
		echo "skip: --pci: no PCI device with a NUMA node here"
	fi
fi

# A bad --pci is a usage error, before any workload is touched.
rc=0
"$migrate" dest --control "$dir/none.sock" --connect 127.0.0.1:1 \
	--pci 0000:zz:00.0 2>"$dir/bad.err" || rc=$?
[ "$rc" = 2 ] && grep -q "expected a PCI address" "$dir/bad.err" ||
	fail "bad --pci: exit $rc"
echo "ok: bad --pci is exit 2"

free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
scale=1/256
if [ "$free" -ge 12 ]; then
	migrate "2 MiB pages" 2m
else
	echo "skip: 2 MiB pages: $free huge pages free, 12 needed (sysctl vm.nr_hugepages=N)"
fi
