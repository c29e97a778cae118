#!/bin/sh
# SPDX-License-Identifier: MIT
# Two hosts made of network namespaces joined by a veth pair (created here,
# removed on exit): gmem-pager serves a file in one, pager-client pages it in
# from the other (random reads from 8 threads, a sequential scan, idle) and
# checks digests and bytes. Exit 77 (skip) where namespaces are not allowed.
set -u
. "$(dirname "$0")/lib.sh"
builddir=${top_builddir:-.}
pager=$builddir/pager/gmem-pager
client=$builddir/tests/pager-client
ns_a=gmem-pa-$$
ns_b=gmem-pb-$$
tmp=$(mktemp -d) || exit 99
pager_pid=

cleanup() {
	[ -n "$pager_pid" ] && kill "$pager_pid" 2>/dev/null
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_b" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

netns_pair "$ns_a" "$ns_b" gmv-$$ 10.201.7 || exit $?

# 24 MiB and a bit: the last page is partial (padded with zeros).
head -c $((24 * 1024 * 1024 + 1000)) /dev/urandom >"$tmp/image" || exit 99

# start_pager [OPTIONS]: gmem-pager serving the image in the first host.
start_pager() {
	ip netns exec "$ns_a" "$pager" --listen 10.201.7.1:7411 \
		--file "$tmp/image" --wait-ms 30000 "$@" >"$tmp/pager.log" 2>&1 &
	pager_pid=$!
	wait_until 10 "$pager_pid" grep -q "serving" "$tmp/pager.log" ||
		{ echo "gmem-pager did not start"; cat "$tmp/pager.log"; exit 1; }
}

fail=0
# Without a key (--insecure: pages in the clear, any peer served).
for mode in random sequential idle; do
	start_pager --insecure
	if ! timeout 120 ip netns exec "$ns_b" "$client" --mode $mode \
		--compare "$tmp/image" 10.201.7.1:7411 >"$tmp/client.json"; then
		echo "FAIL: $mode: client"; fail=1
	fi
	cat "$tmp/client.json"
	wait "$pager_pid" || { echo "FAIL: $mode: gmem-pager exited $?"; fail=1; }
	pager_pid=
	cat "$tmp/pager.log"
	grep -q '"result":0' "$tmp/client.json" &&
		grep -q '"file_equal":true' "$tmp/client.json" || fail=1
	grep -q "destination connected" "$tmp/pager.log" || fail=1
done

# With a key: a client holding it is served, one without it is refused
# before any page moves (the pager says why and exits non-zero).
printf 'a-key-the-two-hosts-share-%s\n' "$$" >"$tmp/key"
chmod 600 "$tmp/key"
for who in keyed stranger; do
	start_pager --key-file "$tmp/key"
	key=$(head -n1 "$tmp/key")
	[ $who = keyed ] || key=
	GMEM_KEY=$key timeout 120 ip netns exec "$ns_b" "$client" --mode idle \
		--compare "$tmp/image" 10.201.7.1:7411 >"$tmp/client.json" 2>"$tmp/client.err"
	rc=$?
	wait "$pager_pid"
	prc=$?
	pager_pid=
	cat "$tmp/pager.log" "$tmp/client.err"
	if [ $who = keyed ]; then
		[ $rc = 0 ] && [ $prc = 0 ] || { echo "FAIL: keyed client: client $rc, pager $prc"; fail=1; }
	else
		[ $rc != 0 ] && [ $prc != 0 ] &&
			grep -qi "authentic\|key" "$tmp/pager.log" ||
			{ echo "FAIL: a client without the key was not refused"; fail=1; }
	fi
done
exit $fail
