#!/bin/sh
# SPDX-License-Identifier: MIT
# External handler mode: tests/uffd-vmm plays a VMM that keeps its own
# mappings (anonymous and memfd), registers them with its own userfaultfd
# and sends fd and mapping list to gmem-pager --uffd-handler, which serves
# its faults from a snapshot (a list with a hole) and from a page server (a
# list covering the image); every page read must equal the snapshot. Bad
# lists must each get a clear error back and install nothing.
set -u
. "$(dirname "$0")/lib.sh"
builddir=${top_builddir:-.}
pager=$builddir/pager/gmem-pager
vmm=$builddir/tests/uffd-vmm
tmp=$(mktemp -d) || exit 99
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT INT TERM

# $1 = log, $2 = text that says the process is ready.
wait_for() {
	wait_until 30 - grep -q "$2" "$1" 2>/dev/null ||
		{ echo "FAIL: no \"$2\" in $1:"; cat "$1"; exit 1; }
}

head -c $((128 * 4096)) /dev/urandom >"$tmp/snap" || exit 99
fail=0

# $1 = layout, rest = the handler's page source options.
run_vmm() {
	layout=$1
	shift
	rm -f "$tmp/handler.log" # the last run's says "waiting" too
	timeout 120 "$pager" --uffd-handler "$tmp/h.sock" "$@" --wait-ms 30000 \
		>"$tmp/handler.log" 2>&1 &
	hpid=$!
	pids="$pids $hpid"
	wait_for "$tmp/handler.log" "waiting for a VMM"
	timeout 120 "$vmm" "$tmp/h.sock" "$tmp/snap" "$layout"
	vrc=$?
	[ $vrc = 77 ] && { echo "SKIP: uffd-vmm could not open a userfaultfd"; exit 77; }
	wait "$hpid"
	hrc=$?
	cat "$tmp/handler.log"
}

# Pages of a list with a hole, from the snapshot file.
run_vmm holes --file "$tmp/snap"
[ $vrc = 0 ] && [ $hrc = 0 ] || { echo "FAIL: holes: vmm $vrc handler $hrc"; fail=1; }
# 64 + 32 pages mapped; the 32 of the hole are never installed.
grep -q "faults [1-9][0-9]* pages installed 96 errors 0" "$tmp/handler.log" ||
	{ echo "FAIL: holes: not exactly the 96 mapped pages served"; fail=1; }

# Pages of a covering list, from a page server serving the snapshot.
timeout 120 "$pager" --listen 127.0.0.1:0 --file "$tmp/snap" --wait-ms 30000 \
	>"$tmp/server.log" 2>&1 &
spid=$!
pids="$pids $spid"
wait_for "$tmp/server.log" "serving"
port=$(sed -n 's/.* on port \([0-9]*\)$/\1/p' "$tmp/server.log")
run_vmm full --connect "127.0.0.1:$port"
[ $vrc = 0 ] && [ $hrc = 0 ] || { echo "FAIL: full: vmm $vrc handler $hrc"; fail=1; }
grep -q "digests equal" "$tmp/handler.log" ||
	{ echo "FAIL: full: digests not compared"; fail=1; }
wait "$spid" || { echo "FAIL: page server exited $?"; fail=1; }

# Bad lists: the VMM reads "error: ...", the handler exits 1 and says why.
for layout in bad-align bad-overlap bad-json; do
	run_vmm $layout --file "$tmp/snap"
	[ $vrc = 0 ] && [ $hrc = 1 ] ||
		{ echo "FAIL: $layout: vmm $vrc handler $hrc"; fail=1; }
	grep -q "mapping list" "$tmp/handler.log" ||
		{ echo "FAIL: $layout: no clear error"; fail=1; }
done
exit $fail
