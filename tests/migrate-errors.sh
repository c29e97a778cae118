#!/bin/bash
# SPDX-License-Identifier: MIT
# migrate-errors.sh - migrations that cannot succeed must say why, exit with
# their documented code and leave the source's copy intact: a bad trace
# file (gmem-replay exit 2, file and line named), a workload that cannot
# start (scripts/migrate-local passes on its error), gmem-migrate usage errors
# (2), a missing host (4), a source control socket that does not exist (3),
# and a destination workload killed with SIGKILL during post-copy (non-zero,
# the source replay still alive, paused, and passing verify).
# Exit 77 = skipped, with the reason.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	echo "usage: tests/migrate-errors.sh (run by make check; top_builddir," \
	     "top_srcdir may be set)"
	exit 0
fi
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
replay=$top_builddir/bench/gmem-replay
migrate=$top_builddir/pager/gmem-migrate
# The kill test needs a post-copy that lasts: gpt2-train at 1/16 is 1.5 GiB.
big_trace=gpt2-train big_scale=${GMEM_ERRORS_SCALE:-1/16}

skip() {
	echo "SKIP: $*"
	exit 77
}
for tool in jq socat ip timeout; do
	command -v "$tool" >/dev/null || skip "$tool not installed (scripts/setup)"
done
[ -x "$replay" ] && [ -x "$migrate" ] || skip "gmem-replay or gmem-migrate not built in $top_builddir"
if [ ! -r /dev/userfaultfd ] && [ "$(id -u)" != 0 ] &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
	skip "no userfaultfd for this user"
fi
avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
((avail_mib > 4096)) || skip "needs 4 GiB of free memory for two 1.5 GiB images"

dir=$(mktemp -d)
ns=me$$
ns_up=0
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	# A writer blocked on a page nobody serves ends only by SIGKILL.
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "$ns_up" = 0 ] || "$top_srcdir/scripts/netns" down "$ns"
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	local f
	for f in "$dir"/*.err; do
		[ -s "$f" ] && sed "s|^|  $(basename "$f"): |" "$f"
	done
	exit 1
}

# expect_rc WANT WHAT CMD...: CMD must exit WANT (stderr in $dir/cmd.err).
expect_rc() {
	local want=$1 what=$2 rc=0
	shift 2
	timeout 60 "$@" >"$dir/cmd.out" 2>"$dir/cmd.err" || rc=$?
	[ "$rc" = "$want" ] || fail "$what: exit $rc, want $want"
	echo "ok: $what: exit $rc: $(grep -v '^usage\|^ \|^$' "$dir/cmd.err" | head -n1)"
}

# expect_msg WHAT REGEX: the last command's stderr must match REGEX.
expect_msg() {
	grep -Eq "$2" "$dir/cmd.err" || fail "$1: stderr does not match '$2'"
}

ctl() {
	printf '%s\n' "$2" | timeout 60 socat -t 30 - "UNIX-CONNECT:$1"
}

# start_replay NAME ARGS...: a gmem-replay in the background (in the
# namespace of ${run[@]}), its socket at $dir/NAME.sock, its pid in $rpid.
start_replay() {
	local name=$1
	shift
	"${run[@]}" "$replay" --control "$dir/$name.sock" --quiet "$@" \
		>"$dir/$name.json" 2>"$dir/$name.err" &
	rpid=$!
	pids+=("$rpid")
	wait_until 60 "$rpid" test -S "$dir/$name.sock" && return 0
	kill -0 "$rpid" 2>/dev/null || fail "gmem-replay $name exited early"
	fail "gmem-replay $name: no control socket after 60 s"
}

# --- a bad trace file ----------------------------------------------------------
printf 'segment 0 first 0 pages 8\nstep 0 dur_ns 0 ranges 0+8\nstep 1 dur_ns abc ranges 1+2\ntotal_pages 8 page_size 4096\n' \
	>"$dir/bad.trace"
expect_rc 2 "bad trace" "$replay" --trace "$dir/bad.trace" --quiet
expect_msg "bad trace" "bad\.trace:3: .*dur_ns"
expect_rc 2 "missing trace" "$replay" --trace "$dir/none.trace.gz" --quiet
expect_msg "missing trace" "none\.trace\.gz: No such file"
# A workload that cannot start: scripts/migrate-local gives its own error.
expect_rc 1 "migrate-local, unknown trace" "$top_srcdir/scripts/migrate-local" \
	--build "$top_builddir" --loopback --quiet --trace no-such-trace
expect_msg "migrate-local, unknown trace" \
	"source gmem-replay exited \(status 2\)"
expect_msg "migrate-local, unknown trace" \
	"^  gmem-replay: trace 'no-such-trace' not found: no no-such-trace\.trace\.gz in "

# --- usage ---------------------------------------------------------------------
expect_rc 0 "gmem-migrate --help" "$migrate" --help
expect_rc 2 "no side" "$migrate"
expect_rc 2 "source without --listen" "$migrate" source --control "$dir/x.sock"
expect_msg "source without --listen" "needs --control or --qmp, and --listen"
expect_rc 2 "dest with --listen" "$migrate" dest --control "$dir/x.sock" \
	--connect 127.0.0.1:1 --listen 127.0.0.1:1
expect_msg "dest with --listen" "dest takes --connect, not --listen"
expect_rc 2 "unknown mode" "$migrate" source --control "$dir/x.sock" \
	--listen 127.0.0.1:0 --mode warp
expect_msg "unknown mode" "mode: expected .* got 'warp'"
expect_rc 2 "unknown option" "$migrate" source --control "$dir/x.sock" \
	--listen 127.0.0.1:0 --bogus

# --- no open door: a keyless run off loopback needs --insecure ---------------
pager=$top_builddir/pager/gmem-pager
# expect_one_line WHAT OPT ADDR: refused in one line that names the address.
expect_one_line() {
	expect_msg "$1" "^gmem-[a-z]+: $2 $3 is not a loopback address: .*--insecure"
	[ "$(wc -l <"$dir/cmd.err")" = 1 ] || fail "$1: more than one line"
}
expect_rc 2 "keyless source off loopback" env -u GMEM_KEY "$migrate" source \
	--control "$dir/x.sock" --listen 10.77.0.9:7000
expect_one_line "keyless source off loopback" --listen 10.77.0.9:7000
expect_rc 2 "keyless dest off loopback" env -u GMEM_KEY "$migrate" dest \
	--control "$dir/x.sock" --connect 10.77.0.9:7000
expect_one_line "keyless dest off loopback" --connect 10.77.0.9:7000
expect_rc 2 "keyless source on every address" env -u GMEM_KEY "$migrate" \
	source --control "$dir/x.sock" --listen '*:7000'
expect_one_line "keyless source on every address" --listen '\*:7000'
expect_rc 2 "keyless pager off loopback" env -u GMEM_KEY "$pager" \
	--listen 0.0.0.0:0 --file "$dir/x.sock"
expect_one_line "keyless pager off loopback" --listen 0.0.0.0:0
# Loopback without a key, --insecure, or a key: past the check (to the
# missing control socket).
expect_rc 3 "keyless source on ::1" env -u GMEM_KEY "$migrate" source \
	--control "$dir/none.sock" --listen '[::1]:0' --quiet
expect_rc 3 "--insecure source off loopback" env -u GMEM_KEY "$migrate" \
	source --control "$dir/none.sock" --listen 10.77.0.9:0 --insecure --quiet
expect_rc 3 "keyed source off loopback" env GMEM_KEY=a-key-of-16-bytes-or-more \
	"$migrate" source --control "$dir/none.sock" --listen 10.77.0.9:0 --quiet
# Every run below is keyed, as an operator's would be.
GMEM_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export GMEM_KEY

# --- the workload's control socket does not exist -----------------------------
expect_rc 3 "missing source control socket" "$migrate" source \
	--control "$dir/none.sock" --listen 127.0.0.1:0 --quiet --mode stop-and-copy
expect_msg "missing source control socket" "none\.sock.*No such file"
jq -e '.ok == false and .mode == "stop-and-copy"' "$dir/cmd.out" >/dev/null ||
	fail "the failed source's report does not name the mode asked: $(cat "$dir/cmd.out")"

# --- hosts: two namespaces, or loopback -----------------------------------------
run=() src_run=() dst_run=() src_ip=127.0.0.1 rc=0
"$top_srcdir/scripts/netns" up "$ns" 2>"$dir/netns.err" || rc=$?
if [ "$rc" = 0 ]; then
	ns_up=1 src_ip=10.77.0.1
	src_run=(ip netns exec "$ns-src") dst_run=(ip netns exec "$ns-dst")
	echo "hosts: two network namespaces joined by a veth pair"
else
	echo "hosts: loopback (network namespaces: $(cat "$dir/netns.err"))"
fi
port=$((20000 + $$ % 20000))

# --- a missing host ---------------------------------------------------------------
run=("${dst_run[@]}")
start_replay lone --trace llama-infer --scale 1/64 --incoming
expect_rc 4 "nothing listens at the source address" "${dst_run[@]}" "$migrate" dest \
	--control "$dir/lone.sock" --connect "$src_ip:$port" --wait-ms 500 --quiet
expect_msg "nothing listens" "refused|unreachable|timed out"
if [ "$ns_up" = 1 ]; then
	# No host has this address on the veth link.
	expect_rc 4 "no host at the address" "${dst_run[@]}" "$migrate" dest \
		--control "$dir/lone.sock" --connect "10.77.0.9:$port" \
		--wait-ms 1000 --quiet
	expect_msg "no host at the address" "unreachable|timed out"
fi
r=$(ctl "$dir/lone.sock" '{"cmd":"query"}')
jq -e '.state == "incoming"' <<<"$r" >/dev/null ||
	fail "the destination workload left its incoming state: $r"
ctl "$dir/lone.sock" '{"cmd":"quit"}' >/dev/null

# --- a destination that never comes ---------------------------------------------
run=("${src_run[@]}")
start_replay alone --trace llama-infer --scale 1/64
expect_rc 4 "no destination connects" "${src_run[@]}" "$migrate" source \
	--control "$dir/alone.sock" --listen "$src_ip:$port" --wait-ms 500 \
	--keep-source --quiet
expect_msg "no destination connects" "no destination connected within 500 ms"
r=$(ctl "$dir/alone.sock" '{"cmd":"query"}')
jq -e '.state == "running"' <<<"$r" >/dev/null ||
	fail "the source workload does not run on after no destination came: $r"
ctl "$dir/alone.sock" '{"cmd":"quit"}' >/dev/null

# --- the destination workload dies during post-copy ---------------------------
run=("${src_run[@]}")
start_replay src --trace "$big_trace" --scale "$big_scale"
src_pid=$rpid
run=("${dst_run[@]}")
start_replay dst --trace "$big_trace" --scale "$big_scale" --incoming
dst_pid=$rpid
# The source waits at accept while the destination allocates its page
# cache: that took over 5 s for these 1.5 GiB in a sanitizer build on a
# slow VM. Once connected, a broken link ends it within --recover-ms.
"${src_run[@]}" "$migrate" source --control "$dir/src.sock" \
	--listen "$src_ip:$port" --mode postcopy --wait-ms 30000 --recover-ms 1000 \
	>"$dir/msrc.json" 2>"$dir/msrc.err" &
msrc=$!
pids+=("$msrc")
"${dst_run[@]}" "$migrate" dest --control "$dir/dst.sock" \
	--connect "$src_ip:$port" --wait-ms 5000 \
	>"$dir/mdst.json" 2>"$dir/mdst.err" &
mdst=$!
pids+=("$mdst")
# Kill it once post-copy has begun (the progress lines say so).
for ((i = 0; i < 600; i++)); do
	grep -q '^post-copy' "$dir/mdst.err" 2>/dev/null && break
	kill -0 "$mdst" 2>/dev/null || fail "gmem-migrate dest ended before post-copy"
	sleep 0.05
done
grep -q '^post-copy' "$dir/mdst.err" || fail "no post-copy after 30 s"
kill -0 "$mdst" 2>/dev/null || fail "the migration ended before the kill"
{ kill -9 "$dst_pid"; wait "$dst_pid"; } 2>/dev/null || true
echo "killed the destination workload during post-copy"
rc_src=0 rc_dst=0
# Both migrators must give up on their own within their --wait-ms.
wait_until 60 - gone "$msrc" "$mdst" || true
kill -0 "$msrc" 2>/dev/null && fail "gmem-migrate source still running 60 s after the kill"
kill -0 "$mdst" 2>/dev/null && fail "gmem-migrate dest still running 60 s after the kill"
wait "$msrc" || rc_src=$?
wait "$mdst" || rc_dst=$?
echo "ok: source migrator exit $rc_src: $(grep '^gmem-migrate' "$dir/msrc.err" | head -n1)"
echo "ok: dest migrator exit $rc_dst: $(grep '^gmem-migrate' "$dir/mdst.err" | head -n1)"
[ "$rc_dst" != 0 ] || fail "dest migrator exited 0 with its workload dead"
[ "$rc_src" != 0 ] || fail "source migrator exited 0: it released its copy of a workload that died"
grep -q '^gmem-migrate: dest: ' "$dir/mdst.err" || fail "dest migrator gave no error message"
grep -q '^gmem-migrate: source: ' "$dir/msrc.err" || fail "source migrator gave no error message"
jq -e '.ok == false and (.error | length > 0)' "$dir/mdst.json" >/dev/null ||
	fail "dest report lacks ok=false and an error: $(cat "$dir/mdst.json")"
kill -0 "$src_pid" 2>/dev/null || fail "the source workload is gone"
r=$(ctl "$dir/src.sock" '{"cmd":"query"}')
jq -e '.ok == true' <<<"$r" >/dev/null || fail "source query: $r"
echo "ok: the source workload is $(jq -r .state <<<"$r")"
r=$(ctl "$dir/src.sock" '{"cmd":"verify"}')
jq -e '.ok == true and .mismatches == 0 and .pages_checked > 0' <<<"$r" >/dev/null ||
	fail "source verify: $r"
echo "ok: the source still holds its copy: $(jq -r .pages_checked <<<"$r") pages verified"
ctl "$dir/src.sock" '{"cmd":"quit"}' >/dev/null || true
echo PASS
