#!/bin/bash
# SPDX-License-Identifier: MIT
# The RDMA transport end to end on a real RDMA device (soft-RoCE in the VM
# rig: make check-vm): gmem-pager --transport rdma serves a file, pager-client
# --rdma pages it in by RDMA READ (random reads from 8 threads, a sequential
# scan, idle; an anonymous region too) and checks digests, bytes and the
# urgent/pushed counts; then the error paths: a TCP-only server, a wildcard
# address, a server killed mid-transfer. Exit 77 (skip) with no RDMA device.
set -u
. "$(dirname "$0")/lib.sh"
builddir=${top_builddir:-.}
pager=$builddir/pager/gmem-pager
client=$builddir/tests/pager-client
tmp=$(mktemp -d) || exit 99
pager_pid=
port=7511

cleanup() {
	[ -n "$pager_pid" ] && kill "$pager_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

skip() {
	echo "SKIP: $*"
	exit 77
}

top_srcdir=${top_srcdir:-$(dirname "$0")/..}
dev_ip=$("$top_srcdir/scripts/rdma-addr" 2>"$tmp/err") ||
	skip "$(cat "$tmp/err") (make check-vm runs this on soft-RoCE)"
ip=${dev_ip#* }
echo "RDMA device and address: $dev_ip"

# 8 MiB and a bit: soft-RoCE under emulation is slow; the last page is partial.
head -c $((8 * 1024 * 1024 + 1000)) /dev/urandom >"$tmp/image" || exit 99
fail=0

start_pager() {
	port=$((port + 1))
	"$pager" --listen "$ip:$port" --file "$tmp/image" --wait-ms 60000 \
		--insecure "$@" >"$tmp/pager.log" 2>&1 &
	pager_pid=$!
	wait_until 20 "$pager_pid" grep -q "transport" "$tmp/pager.log" &&
		return 0
	echo "gmem-pager did not start"; cat "$tmp/pager.log"
	return 1
}

# json FIELD: a number from the client's JSON line.
json() {
	sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$tmp/client.json"
}

expect() { # what, condition...
	local what=$1
	shift
	if ! "$@"; then
		echo "FAIL: $what"
		fail=1
	fi
}

for run in random sequential idle random-anon; do
	mode=${run%-anon}
	anon=
	[ "$run" = random-anon ] && anon=--anon
	start_pager --transport rdma || { fail=1; continue; }
	timeout 300 "$client" --rdma $anon --mode "$mode" --compare "$tmp/image" \
		"$ip:$port" >"$tmp/client.json"
	rc=$?
	wait "$pager_pid"
	prc=$?
	pager_pid=
	cat "$tmp/client.json" "$tmp/pager.log"
	expect "$run: client exit $rc" [ $rc = 0 ]
	expect "$run: gmem-pager exit $prc" [ $prc = 0 ]
	expect "$run: transport rdma" grep -q '"transport":"rdma ' "$tmp/client.json"
	expect "$run: result" grep -q '"result":0' "$tmp/client.json"
	expect "$run: bytes" grep -q '"file_equal":true' "$tmp/client.json"
	expect "$run: pager on rdma" grep -q "connected; transport rdma" "$tmp/pager.log"
	pages=$(json pages) urgent=$(json urgent_pages) pushed=$(json pushed_pages)
	expect "$run: every page installed once" [ "$((urgent + pushed))" = "$pages" ]
	[ "$mode" = idle ] && expect "idle: no urgent pages" [ "$urgent" = 0 ]
	[ "$mode" = random ] && expect "$run: urgent pages" [ "$urgent" -gt 0 ]
done

# A server without RDMA: the client says so and fails.
start_pager --transport tcp || exit 1
timeout 60 "$client" --rdma --mode idle "$ip:$port" >"$tmp/client.json" 2>"$tmp/err"
expect "tcp-only server refused" [ $? != 0 ]
cat "$tmp/err"
expect "tcp-only server: reason" grep -q "offers no RDMA" "$tmp/err"
kill "$pager_pid" 2>/dev/null; wait "$pager_pid" 2>/dev/null; pager_pid=

# A wildcard address names no device.
timeout 30 "$pager" --listen "*:0" --file "$tmp/image" --transport rdma --insecure \
	>"$tmp/pager.log" 2>&1
expect "wildcard refused" [ $? != 0 ]
cat "$tmp/pager.log"
expect "wildcard: reason" grep -q "wildcard" "$tmp/pager.log"

# The server vanishes mid-transfer: the client fails with the device's
# name and the failed operation, installs nothing partial, does not hang.
head -c $((64 * 1024 * 1024)) /dev/urandom >"$tmp/image"
start_pager --transport rdma || exit 1
timeout 120 "$client" --rdma --mode idle "$ip:$port" >"$tmp/client.json" 2>"$tmp/err" &
client_pid=$!
wait_until 10 - grep -q "connected" "$tmp/pager.log" || true
sleep 0.5
kill -9 "$pager_pid"
wait "$client_pid"
rc=$?
pager_pid=
cat "$tmp/client.json" "$tmp/err"
expect "vanished server: client failed (not hung)" [ $rc != 0 ] && [ $rc != 124 ]
expect "vanished server: reason" grep -Eq "RDMA READ completion|Connection reset|server" "$tmp/err"
exit $fail
