#!/bin/bash
# SPDX-License-Identifier: MIT
# run.sh - the fault-injection suite: whole migrations of a real trace
# (gmem-replay + gmem-migrate, two network namespaces joined by a veth)
# with one fault injected in each: a delayed, bit-flipped, garbled or cut
# stream (tests/faults/faultproxy), the veth link down and up during
# post-copy, the page server's connections reset (ss -K), packet loss
# (nftables in the namespace), the page server or the destination migrator
# killed during post-copy, peers with another key or none. Both sides run
# with post-copy recovery (--recover-ms, short here) unless a case turns it
# off: a cut or reset link resumes and completes; a peer that does not come
# back in time fails cleanly. Each run ends in an exact verdict: "completed" (both sides exit 0,
# the destination workload verified every page) or "failed cleanly" (both
# sides report an error and a non-zero exit, and the source workload still
# holds every page, verified); anything else, or a verdict other than the
# one expected, fails the suite. Prints one line of totals at the end.
# Exit 77 = skipped, with the reason.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
replay=$top_builddir/bench/gmem-replay
migrate=$top_builddir/pager/gmem-migrate
proxy=$top_builddir/tests/faults/faultproxy
trace=gpt2-train scale=${GMEM_FAULTS_SCALE:-1/64}

skip() {
	echo "SKIP: $*"
	exit 77
}
for tool in jq socat ip nft ss timeout; do
	command -v "$tool" >/dev/null || skip "$tool not installed (scripts/setup)"
done
[ -x "$replay" ] && [ -x "$migrate" ] && [ -x "$proxy" ] ||
	skip "gmem-replay, gmem-migrate or faultproxy not built in $top_builddir"
[ -r /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd for this user"
avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
((avail_mib > 2048)) || skip "needs 2 GiB of free memory"

dir=$(mktemp -d)
ns=gfi$$
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$top_srcdir/scripts/netns" down "$ns"
	rm -rf "$dir"
}
trap cleanup EXIT
"$top_srcdir/scripts/netns" up "$ns" 2>"$dir/netns.err" ||
	skip "network namespaces: $(cat "$dir/netns.err")"
src=(ip netns exec "$ns-src") dst=(ip netns exec "$ns-dst")
src_ip=10.77.0.1 port=$((20000 + $$ % 20000)) pport=$((port + 1))
printf 'key-of-the-two-hosts-%s\n' "$$" >"$dir/key"
printf 'key-of-a-stranger-host-%s\n' "$$" >"$dir/other-key"
chmod 600 "$dir/key" "$dir/other-key"

runs=0 completed=0 failed_clean=0 lost=0 bad=0

# said FILE...: the migrators' error lines (not what the destination
# reports of its preparation).
said() {
	grep -h '^gmem-migrate: ' "$@" | grep -v ': dest: page cache of '
}

ctl() {
	printf '%s\n' "$2" | timeout 60 socat -t 30 - "UNIX-CONNECT:$1"
}

start_replay() { # NAME NS-RUNNER... ARGS
	local name=$1
	shift
	"$@" --control "$dir/$name.sock" --quiet >"$dir/$name.json" 2>"$dir/$name.err" &
	pids+=($!)
	rpid=$!
	wait_until 60 "$rpid" test -S "$dir/$name.sock" && return 0
	echo "FAIL: gmem-replay $name did not start: $(cat "$dir/$name.err")"
	exit 1
}

# migrators_exit SECONDS: waits up to SECONDS for both migrators to end;
# fails if one still runs.
migrators_exit() {
	wait_until "$1" - gone "$msrc" "$mdst"
}

# Faults applied once post-copy has begun (the destination's progress
# line says so).
wait_postcopy() {
	local i
	for ((i = 0; i < 600; i++)); do
		grep -q '^post-copy' "$dir/mdst.err" 2>/dev/null && return 0
		kill -0 "$mdst" 2>/dev/null || return 1
		sleep 0.02
	done
	return 1
}
link_flap() { # seconds down
	wait_postcopy || return 0
	ip -n "$ns-dst" link set "$ns-b" down
	sleep "$1"
	ip -n "$ns-dst" link set "$ns-b" up
}
# The link goes down and stays down until both sides have given up on
# their own, which neither may take longer than @1 seconds to do: no reset
# reaches either, so keepalive and the send timeout must notice.
link_gone() {
	wait_postcopy || return 0
	ip -n "$ns-dst" link set "$ns-b" down
	migrators_exit "$1" || {
		echo "  FAIL: a migrator still waits $1 s after the link went away"
		bad=$((bad + 1))
	}
	ip -n "$ns-dst" link set "$ns-b" up
}
link_reset() { # the page server's established connections, reset
	wait_postcopy || return 0
	"${src[@]}" ss -K state established sport = ":$port" >/dev/null 2>&1
}
kill_migrator() { # source|dest
	wait_postcopy || return 0
	if [ "$1" = source ]; then kill -9 "$msrc"; else kill -9 "$mdst"; fi
}
# The page server killed, and a new one started on the same address: it
# serves a new session, so the destination's resume is refused.
restart_source() {
	kill_migrator source
	wait "$msrc" 2>/dev/null || true
	start_source
}
loss() { # percent, for the whole run, both directions at the destination
	"${dst[@]}" nft -f - <<NFT
table inet gmemfault {
	chain in { type filter hook input priority 0; meta l4proto tcp numgen random mod 100 < $1 drop; }
	chain out { type filter hook output priority 0; meta l4proto tcp numgen random mod 100 < $1 drop; }
}
NFT
}

# verdict NAME EXPECT RC_SRC RC_DST: classifies the run, checks both
# workloads, counts.
verdict() {
	local name=$1 expect=$2 rc_src=$3 rc_dst=$4 v r n
	runs=$((runs + 1))
	if [ "$rc_src" = 0 ] && [ "$rc_dst" = 0 ]; then
		v=completed
		jq -e '.ok == true' "$dir/mdst.json" >/dev/null || v="bad report"
		completed=$((completed + 1))
	else
		v="failed cleanly"
		# Neither side may claim success alone: a source that
		# exits 0 has released its copy.
		[ "$rc_src" != 0 ] && [ "$rc_dst" != 0 ] || v="one side succeeded"
		for side in src dst; do
			[ "$side" = src ] && [ "$killed" = source ] && continue
			[ "$side" = dst ] && [ "$killed" = dest ] && continue
			said "$dir/m$side.err" | grep -q . ||
				v="no error message from $side"
		done
		r=$(ctl "$dir/src.sock" '{"cmd":"verify"}' || true)
		n=$(jq -r '.mismatches // "none"' <<<"$r" 2>/dev/null || echo none)
		if [ "$n" = none ] || ! jq -e '.pages_checked > 0' <<<"$r" >/dev/null; then
			v="source copy lost"
			lost=$((lost + 1))
		elif [ "$n" != 0 ]; then
			v="source copy corrupt ($n pages)"
			lost=$((lost + n))
		fi
		[ "$v" = "failed cleanly" ] && failed_clean=$((failed_clean + 1))
	fi
	printf '%-26s %-16s exit src %-3s dst %-3s %s\n' "$name" "$v" "$rc_src" \
		"$rc_dst" "$(said "$dir/mdst.err" "$dir/msrc.err" | head -n1 |
			cut -c1-90)"
	case $expect in
	complete) [ "$v" = completed ] ;;
	fail) [ "$v" = "failed cleanly" ] ;;
	esac || { bad=$((bad + 1)); echo "  FAIL: $name: expected $expect"; }
	[ -z "${must_say:-}" ] || grep -qE "$must_say" "$dir/mdst.err" "$dir/msrc.err" ||
		{ bad=$((bad + 1)); echo "  FAIL: $name: no error matching '$must_say'"; }
}

# The source migrator, listening once it returns (the proxy connects to the
# source as the destination connects to it); post-copy, whose link faults
# recovery resumes (auto's pre-copy pass would just fail them cleanly).
start_source() {
	local i
	"${src[@]}" "$migrate" source --mode postcopy --control "$dir/src.sock" --keep-source \
		--listen "$src_ip:$port" --wait-ms 4000 --recover-ms "$recover" \
		--insecure "${src_key[@]}" \
		>"$dir/msrc.json" 2>"$dir/msrc.err" &
	msrc=$!
	pids+=($msrc)
	for ((i = 0; i < 200; i++)); do
		"${src[@]}" ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.05
	done
}

# one NAME EXPECT [key=a|b|none,a|b|none] [recover=MS] [proxy ARGS]
#     [action CMD...]
one() {
	local name=$1 expect=$2 src_key=() dst_key=() to=$src_ip:$port pp=
	local rc_src=0 rc_dst=0 action=() i recover=2000
	shift 2
	killed=
	while (($#)); do
		case $1 in
		keys=*) IFS=, read -r a b <<<"${1#keys=}"
			[ "$a" = none ] || src_key=(--key-file "$dir/$a")
			[ "$b" = none ] || dst_key=(--key-file "$dir/$b")
			shift ;;
		recover=*) recover=${1#recover=}; shift ;;
		proxy) pp=$2; shift 2 ;;
		action) shift; action=("$@"); break ;;
		esac
	done
	rm -f "$dir"/*.sock "$dir"/m*.err "$dir"/m*.json
	start_replay src "${src[@]}" "$replay" --trace "$trace" --scale "$scale"
	local srpid=$rpid
	start_replay dst "${dst[@]}" "$replay" --trace "$trace" --scale "$scale" --incoming
	local drpid=$rpid
	if [ -n "$pp" ]; then
		# shellcheck disable=SC2086
		"${dst[@]}" "$proxy" --listen "127.0.0.1:$pport" --to "$src_ip:$port" \
			$pp >"$dir/proxy.out" 2>"$dir/proxy.err" &
		pids+=($!)
		for ((i = 0; i < 100; i++)); do
			grep -q ready "$dir/proxy.out" && break
			sleep 0.05
		done
		to=127.0.0.1:$pport
	fi
	start_source
	"${dst[@]}" "$migrate" dest --control "$dir/dst.sock" --connect "$to" \
		--wait-ms 4000 --recover-ms "$recover" --verify --observe-ms 200 \
		--insecure "${dst_key[@]}" \
		>"$dir/mdst.json" 2>"$dir/mdst.err" &
	mdst=$!
	pids+=($mdst)
	if ((${#action[@]})); then
		"${action[@]}"
		[ "${action[0]}" = kill_migrator ] && killed=${action[1]}
	fi
	migrators_exit 60 || {
		echo "  FAIL: $name: a migrator still runs after 60 s"
		bad=$((bad + 1))
	}
	wait "$msrc" 2>/dev/null || rc_src=$?
	wait "$mdst" 2>/dev/null || rc_dst=$?
	verdict "$name" "$expect" "$rc_src" "$rc_dst"
	ctl "$dir/src.sock" '{"cmd":"quit"}' >/dev/null 2>&1 || true
	kill -9 "$drpid" "$srpid" 2>/dev/null || true
	wait "$drpid" "$srpid" 2>/dev/null || true
	"${dst[@]}" nft delete table inet gmemfault 2>/dev/null || true
	must_say=
}

echo "trace $trace at $scale; hosts: network namespaces $ns-src, $ns-dst"
one "no fault" complete
one "delay 1 ms per 64 KiB" complete proxy "--delay-ms 1"
one "link down 1 s" complete action link_flap 1
loss 3
one "3% packet loss" complete
# Caught: never completed; the crc's own message is asserted by
# tests/test-remote.c (corrupted_payload_is_rejected_region_intact).
one "byte flipped in transit" fail proxy "--conn 1 --flip-at 3000000"
one "garbage frame" fail proxy "--conn 0 --garbage-at 100"
# Every connection cut mid-frame in post-copy: the destination reconnects
# through the proxy and resumes; without recovery the run fails as before.
one "cut, recovered" complete proxy "--conn 1 --cut-at 2000000"
one "cut, no recovery" fail recover=0 proxy "--conn 1 --cut-at 2000000"
one "page server link reset" complete action link_reset
# Down longer than --wait-ms and --recover-ms together.
must_say="did not come back"
one "link down past recovery" fail action link_flap 7
must_say="did not come back"
one "link gone" fail action link_gone 15
must_say="did not come back"
one "page server killed" fail action kill_migrator source
one "page server killed, restarted" fail action restart_source
must_say="did not come back"
one "destination killed" fail action kill_migrator dest
one "same key both sides" complete keys=key,key
# Keyed, every frame sealed: the same flipped byte fails to open, which
# recovery takes as a broken link (fresh keys on the new connections; the
# source kept every page); without recovery the run fails, saying why.
one "byte flipped, keyed, recovered" complete keys=key,key \
	proxy "--conn 1 --flip-at 3000000"
must_say="failed authentication"
one "byte flipped, keyed, no recovery" fail keys=key,key recover=0 \
	proxy "--conn 1 --flip-at 3000000"
must_say="authentication"
one "another key" fail keys=key,other-key
must_say="authentication"
one "destination without key" fail keys=key,none
echo "faults: $runs migrations (a fault or a key check in all but the first):" \
	"$completed completed" \
	"with identical content, $failed_clean failed cleanly, $lost pages" \
	"lost or corrupt on the source; $bad unexpected"
[ "$bad" = 0 ] && [ "$lost" = 0 ] || exit 1
echo PASS
