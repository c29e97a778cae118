#!/bin/bash
# SPDX-License-Identifier: MIT
# cli.sh - the command lines of gmem-migrate, gmem-pager and gmem-replay,
# as a new user meets them: every bad value, unknown option or missing
# argument is exit 2 with one line on stderr that names the option, under
# the program's own name, before anything is contacted; the same short
# options and the same --wait-ms default in each; HOST:PORT checked, a name
# that does not resolve said so; `dest --mode` refused; and a destination
# without a source says on its progress line whom it waits for.
# Exit 77 = skipped, with the reason.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	echo "usage: tests/cli.sh (run by make check; top_builddir may be set)"
	exit 0
fi
top_builddir=${top_builddir:-.}
migrate=$top_builddir/pager/gmem-migrate
pager=$top_builddir/pager/gmem-pager
replay=$top_builddir/bench/gmem-replay
for f in "$migrate" "$pager" "$replay"; do
	[ -x "$f" ] || { echo "SKIP: $f not built"; exit 77; }
done

dir=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

failed=0
fail() {
	echo "FAIL: $*"
	[ -s "$dir/err" ] && sed 's/^/  stderr: /' "$dir/err"
	failed=1
}

# run CMD...: runs it with stdin closed, stdout and stderr in $dir; sets rc.
run() {
	rc=0
	timeout 30 "$@" </dev/null >"$dir/out" 2>"$dir/err" || rc=$?
}

# usage_error NAME WANT CMD...: CMD (program NAME) must exit 2 with exactly
# one line on stderr, "NAME: ...", that contains WANT (an option's name).
usage_error() {
	local name=$1 want=$2 line
	shift 2
	run "$@"
	line=$(head -n1 "$dir/err")
	if [ "$rc" != 2 ]; then
		fail "${*:2}: exit $rc, want 2"
	elif [ "$(wc -l <"$dir/err")" != 1 ]; then
		fail "${*:2}: $(wc -l <"$dir/err") lines on stderr, want 1"
	elif [ "${line#"$name: "}" = "$line" ]; then
		fail "${*:2}: stderr does not start with '$name: '"
	elif ! grep -qF -- "$want" "$dir/err"; then
		fail "${*:2}: stderr does not name $want"
	else
		echo "ok: ${*:2}: $line"
	fi
}

# --- bad numbers, each program (the control socket does not exist: a
# value that got through would end in exit 3, not 2) -----------------------
src=(source --control "$dir/none.sock" --listen 127.0.0.1:0)
dst=(dest --control "$dir/none.sock" --connect 127.0.0.1:1)
m() { usage_error gmem-migrate "$@"; }
m --bulk "$migrate" "${src[@]}" --bulk x
m --bulk "$migrate" "${src[@]}" --bulk 0
m --bulk "$migrate" "${dst[@]}" --bulk 9
m --max-rounds "$migrate" "${src[@]}" --max-rounds -3
m --max-rounds "$migrate" "${src[@]}" --max-rounds 2x
m --downtime-ms "$migrate" "${src[@]}" --downtime-ms x
m --downtime-ms "$migrate" "${src[@]}" --downtime-ms ''
m --wait-ms "$migrate" "${dst[@]}" --wait-ms abc
m --wait-ms "$migrate" "${dst[@]}" --wait-ms 99999999999
m --fault-around "$migrate" "${dst[@]}" --fault-around 3
m --fault-around "$migrate" "${dst[@]}" --fault-around 1024
m --threads "$migrate" "${dst[@]}" --threads 65
m --recover-ms "$migrate" "${src[@]}" --recover-ms -2
m --observe-ms "$migrate" "${dst[@]}" --observe-ms ' 5'
m --numa-node "$migrate" "${dst[@]}" --numa-node -1
m --transport "$migrate" "${src[@]}" --transport udp
m --mode "$migrate" "${src[@]}" --mode warp
usage_error gmem-pager --wait-ms "$pager" --listen 127.0.0.1:0 \
	--file "$dir/none" --wait-ms abc
usage_error gmem-pager --wait-ms "$pager" --listen 127.0.0.1:0 \
	--file "$dir/none" --wait-ms 0
usage_error gmem-pager --transport "$pager" --listen 127.0.0.1:0 \
	--file "$dir/none" --transport udp
usage_error gmem-replay --steps "$replay" --trace "$dir/none" --steps 0
usage_error gmem-replay --steps "$replay" --trace "$dir/none" --steps -1
usage_error gmem-replay --scale "$replay" --trace "$dir/none" --scale 1/0
usage_error gmem-replay --page-size "$replay" --trace "$dir/none" \
	--page-size 3

# --- --qmp: a QEMU instead of --control, and what it needs ----------------
q=(--qmp "$dir/none.qmp" --qemu-uri tcp:127.0.0.1:1)
m "--control or --qmp" "$migrate" "${src[@]}" "${q[@]}"
m "--qemu-uri" "$migrate" source --qmp "$dir/none.qmp" --listen 127.0.0.1:0
m "--uffd-socket" "$migrate" dest "${q[@]}" --connect 127.0.0.1:1
m "--uffd-socket" "$migrate" source "${q[@]}" --listen 127.0.0.1:0 \
	--uffd-socket "$dir/u.sock"
m "post-copy or stop-and-copy" "$migrate" source "${q[@]}" --listen 127.0.0.1:0 \
	--mode precopy
m "--verify" "$migrate" dest "${q[@]}" --uffd-socket "$dir/u.sock" \
	--connect 127.0.0.1:1 --verify
m "go with --qmp" "$migrate" "${src[@]}" --memdev ram0

# --- unknown options, missing arguments: one line, not the help ------------
m "'--bogus'" "$migrate" "${src[@]}" --bogus
m "'-x'" "$migrate" "${src[@]}" -x
m "'--bulk'" "$migrate" "${src[@]}" --bulk
m "'--verify'" "$migrate" "${dst[@]}" --verify=yes
m "'--k'" "$migrate" "${src[@]}" --k x
usage_error gmem-pager "'--bogus'" "$pager" --bogus
usage_error gmem-pager "'-w'" "$pager" --listen 127.0.0.1:0 -w
usage_error gmem-replay "'--bogus'" "$replay" --bogus
usage_error gmem-replay "'--trace'" "$replay" --trace
run "$migrate" "${src[@]}" --bogus
grep -q "try 'gmem-migrate --help'" "$dir/err" ||
	fail "an unknown option does not point to --help"

# --- addresses -------------------------------------------------------------
m --connect "$migrate" dest --control "$dir/none.sock" --connect 127.0.0.1
m --connect "$migrate" dest --control "$dir/none.sock" --connect 127.0.0.1:0
m --listen "$migrate" source --control "$dir/none.sock" --listen 10.0.0.1
m --listen "$migrate" source --control "$dir/none.sock" --listen :7000
usage_error gmem-pager --listen "$pager" --listen 127.0.0.1 --file "$dir/none"
usage_error gmem-pager --connect "$pager" --uffd-handler "$dir/h.sock" \
	--connect 127.0.0.1
# A name that does not resolve (.invalid never does, RFC 2606): a network
# failure (gmem-migrate 4, gmem-pager 1) that says so.
for p in migrate pager; do
	if [ $p = migrate ]; then
		want=4
		run "$migrate" dest --control "$dir/none.sock" \
			--connect nosuch.invalid:7000
	else
		want=1
		run "$pager" --uffd-handler "$dir/h.sock" \
			--connect nosuch.invalid:7000
	fi
	if [ "$rc" != $want ]; then
		fail "gmem-$p: nosuch.invalid: exit $rc, want $want"
	elif ! grep -q "^gmem-$p: --connect: cannot resolve 'nosuch.invalid': " "$dir/err"; then
		fail "gmem-$p: nosuch.invalid: not said to be unresolvable"
	else
		echo "ok: gmem-$p: exit $rc: $(head -n1 "$dir/err")"
	fi
done

# --- the destination follows the source's mode -----------------------------
m --mode "$migrate" "${dst[@]}" --mode precopy
m --mode "$migrate" "${dst[@]}" -m stop-and-copy

# --- the program's own name, not libtool's ----------------------------------
for p in "$migrate" "$pager" "$replay"; do
	run "$p" --bogus
	if grep -q '\.libs\|lt-' "$dir/err"; then
		fail "$p: libtool's name in '$(cat "$dir/err")'"
	fi
done

# --- --help: exit 0, `usage:`, one --wait-ms default -----------------------
for p in "$migrate" "$pager" "$replay"; do
	name=$(basename "$p")
	run "$p" --help
	[ "$rc" = 0 ] || fail "$name --help: exit $rc"
	head -n1 "$dir/out" | grep -q "^usage: $name " ||
		fail "$name --help: first line is not 'usage: $name ...'"
	[ ! -s "$dir/err" ] || fail "$name --help wrote to stderr"
done
for p in "$migrate" "$pager"; do
	"$p" --help | grep -A2 -- '-w, --wait-ms' | grep -q '(30000;' ||
		fail "$(basename "$p") --help: no '-w, --wait-ms' of default 30000"
done
echo "ok: --help: usage: lines, -w, --wait-ms 30000 in gmem-migrate and gmem-pager"

# --- one short option for one long option ----------------------------------
m --wait-ms "$migrate" "${dst[@]}" -w abc
usage_error gmem-pager --wait-ms "$pager" -l 127.0.0.1:0 -f "$dir/none" -w abc
m --transport "$migrate" "${dst[@]}" -t udp
usage_error gmem-pager --transport "$pager" -l 127.0.0.1:0 -f "$dir/none" -t udp
m --connect "$migrate" dest -C "$dir/none.sock" -c 127.0.0.1
usage_error gmem-pager --connect "$pager" -H "$dir/h.sock" -c 127.0.0.1
m --listen "$migrate" source -C "$dir/none.sock" -l 127.0.0.1
usage_error gmem-pager --listen "$pager" -l 127.0.0.1 -f "$dir/none"
# -C is --control: gmem-migrate goes on to the (missing) socket, exit 3;
# gmem-replay to the (missing) trace, not "--incoming needs --control".
run "$migrate" source -C "$dir/none.sock" -l 127.0.0.1:0 -q
[ "$rc" = 3 ] || fail "gmem-migrate -C: exit $rc, want 3 (no workload)"
run "$replay" -t "$dir/none.trace" -i -C "$dir/r.sock"
! grep -q "needs --control" "$dir/err" || fail "gmem-replay -C is not --control"
echo "ok: -C -l -c -w -t: the same options in each program"

# --- a peer that does not come: said on the progress line -------------------
if [ ! -r /dev/userfaultfd ] && [ "$(id -u)" != 0 ] &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
	echo "skip: waiting lines: no userfaultfd for this user"
else
	printf 'segment 0 first 0 pages 64\nstep 0 dur_ns 10000000 ranges 0+64\nstep 1 dur_ns 10000000 ranges 1+2\ntotal_pages 64 page_size 4096\n' \
		>"$dir/tiny.trace"
	"$replay" --trace "$dir/tiny.trace" --quiet --incoming \
		--control "$dir/dst.sock" >/dev/null 2>"$dir/dst.err" &
	pids+=($!)
	"$replay" --trace "$dir/tiny.trace" --quiet \
		--control "$dir/src.sock" >/dev/null 2>"$dir/src.err" &
	pids+=($!)
	wait_until 30 - test -S "$dir/dst.sock" -a -S "$dir/src.sock" ||
		fail "gmem-replay: no control sockets"
	port=$((20000 + $$ % 20000))
	run "$migrate" dest --control "$dir/dst.sock" \
		--connect "127.0.0.1:$port" --wait-ms 1500 --no-prealloc
	if [ "$rc" != 4 ]; then
		fail "dest without a source: exit $rc, want 4"
	elif ! grep -q "^waiting for source at 127.0.0.1:$port, retrying, gives up in 1\.[0-5] s" "$dir/err"; then
		fail "dest without a source: no waiting line"
	else
		echo "ok: dest: $(grep '^waiting' "$dir/err" | head -n1)"
	fi
	run "$migrate" source --control "$dir/src.sock" \
		--listen "127.0.0.1:$port" --wait-ms 1500 --keep-source
	if [ "$rc" != 4 ]; then
		fail "source without a destination: exit $rc, want 4"
	elif ! grep -q "^waiting for destination on 127.0.0.1:$port, gives up in 1\.[0-5] s" "$dir/err"; then
		fail "source without a destination: no waiting line"
	else
		echo "ok: source: $(grep '^waiting' "$dir/err" | head -n1)"
	fi
fi

[ "$failed" = 0 ] && echo PASS
exit "$failed"
