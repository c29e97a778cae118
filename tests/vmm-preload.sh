#!/bin/sh
# SPDX-License-Identifier: MIT
# libgmem-vmm.so in a process written without gmem (tests/vmm-standin maps a
# shared file on /dev/shm as QEMU maps a memory-backend-file,share=on):
# gmem-pager --uffd-handler serves every page it reads from an image (the
# copy it makes must equal the image, the faults must be counted) and its
# dirty log names exactly the pages it wrote. Without gmem the process
# runs untouched (one line on stderr), or exits 1 when told it must not.
# Served from a page server, it runs on alone once gmem has sent every page.
set -u
. "$(dirname "$0")/lib.sh"
builddir=${top_builddir:-.}
pager=$builddir/pager/gmem-pager
standin=$builddir/tests/vmm-standin
lib=$builddir/libgmem/vmm/.libs/libgmem-vmm.so
[ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
tmp=$(mktemp -d) || exit 99
shm=/dev/shm/gmem-vmm-preload.$$
pids=
trap 'exec 3>&-; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp" "$shm"' EXIT INT TERM

# $1 = log, $2 = text that says the process got there.
wait_for() {
	wait_until 30 - grep -q -- "$2" "$1" 2>/dev/null ||
		{ echo "FAIL: no \"$2\" in $1:"; cat "$1"; exit 1; }
}

pages=64
head -c $((pages * 4096)) /dev/urandom >"$tmp/image" || exit 99
fail=0

# Served: reads from the image, then the dirty log of its writes.
# No timeout(1) in front: SIGUSR1 must reach gmem-pager itself.
"$pager" --uffd-handler "$tmp/h.sock" --file "$tmp/image" \
	--dirty-log --wait-ms 30000 >"$tmp/pager.log" 2>&1 &
ppid=$!
pids="$pids $ppid"
wait_for "$tmp/pager.log" "waiting for a VMM"
mkfifo "$tmp/in" || exit 99
LD_PRELOAD=$(preload_list "$lib") GMEM_VMM_PATHS=$shm GMEM_VMM_SOCKET=$tmp/h.sock \
	GMEM_VMM_REQUIRED=1 timeout 120 "$standin" "$shm" $pages "$tmp/copy" \
	<"$tmp/in" >"$tmp/standin.log" 2>&1 &
spid=$!
pids="$pids $spid"
exec 3>"$tmp/in"
wait_until 30 "$spid" grep -q "read $pages pages" "$tmp/standin.log"
if grep -q "no userfaultfd" "$tmp/standin.log"; then
	echo "SKIP: $(cat "$tmp/standin.log")"
	exit 77
fi
wait_for "$tmp/standin.log" "read $pages pages"
cmp "$tmp/copy" "$tmp/image" ||
	{ echo "FAIL: the pages read differ from the image"; fail=1; }
# Epoch 1: what the faults installed (a new page reads as written).
kill -USR1 "$ppid"
wait_for "$tmp/pager.log" "dirty epoch 1:"
printf '3\n10-11\n' >&3
wait_for "$tmp/standin.log" "wrote 10-11"
kill -USR1 "$ppid"
wait_for "$tmp/pager.log" "dirty epoch 2:"
grep -q "dirty epoch 2: 3 pages: 3,10-11$" "$tmp/pager.log" ||
	{ echo "FAIL: the dirty log did not name exactly pages 3, 10, 11"; fail=1; }
exec 3>&-
wait "$spid" || { echo "FAIL: vmm-standin exited $?"; fail=1; }
wait "$ppid" || { echo "FAIL: gmem-pager exited $?"; fail=1; }
cat "$tmp/pager.log" "$tmp/standin.log"
grep -q "faults [1-9][0-9]* pages installed $pages errors 0" "$tmp/pager.log" ||
	{ echo "FAIL: not every page served by a fault"; fail=1; }

# From a page server: once every page is there gmem-pager says "done" and
# exits, the process lets its userfaultfd go and runs on by itself.
rm -f "$shm"
timeout 120 "$pager" --listen 127.0.0.1:0 --file "$tmp/image" --wait-ms 30000 \
	>"$tmp/server.log" 2>&1 &
pids="$pids $!"
wait_for "$tmp/server.log" "serving"
port=$(sed -n 's/.* on port \([0-9]*\)$/\1/p' "$tmp/server.log")
rm -f "$tmp/pager.log"
timeout 120 "$pager" --uffd-handler "$tmp/h.sock" --connect "127.0.0.1:$port" \
	--wait-ms 30000 >"$tmp/pager.log" 2>&1 &
ppid=$!
pids="$pids $ppid"
wait_for "$tmp/pager.log" "waiting for a VMM"
LD_PRELOAD=$(preload_list "$lib") GMEM_VMM_PATHS=$shm GMEM_VMM_SOCKET=$tmp/h.sock \
	GMEM_VMM_REQUIRED=1 timeout 120 "$standin" "$shm" $pages "$tmp/copy" \
	<"$tmp/in" >"$tmp/standin.log" 2>&1 &
spid=$!
pids="$pids $spid"
exec 3>"$tmp/in"
wait_for "$tmp/standin.log" "read $pages pages"
wait "$ppid" || { echo "FAIL: gmem-pager --connect exited $?"; fail=1; }
grep -q "digests equal" "$tmp/pager.log" ||
	{ echo "FAIL: --connect: digests not compared"; cat "$tmp/pager.log"; fail=1; }
cmp "$tmp/copy" "$tmp/image" ||
	{ echo "FAIL: --connect: the pages read differ from the image"; fail=1; }
printf '5\n' >&3
wait_for "$tmp/standin.log" "wrote 5-5"
exec 3>&-
wait "$spid" || { echo "FAIL: --connect: vmm-standin exited $?"; fail=1; }
! grep -q "went away" "$tmp/standin.log" ||
	{ echo "FAIL: --connect: no \"done\" came"; cat "$tmp/standin.log"; fail=1; }

# No gmem listening: the process runs on as if never preloaded...
rm -f "$shm"
LD_PRELOAD=$(preload_list "$lib") GMEM_VMM_PATHS=$shm GMEM_VMM_SOCKET=$tmp/none.sock \
	timeout 60 "$standin" "$shm" $pages "$tmp/copy" </dev/null \
	>"$tmp/alone.log" 2>&1 ||
	{ echo "FAIL: without gmem the process failed:"; cat "$tmp/alone.log"; fail=1; }
cmp -s "$tmp/copy" /dev/zero; [ $? = 1 ] && cmp -n $((pages * 4096)) "$tmp/copy" /dev/zero ||
	{ echo "FAIL: without gmem the new file did not read as zeros"; fail=1; }
[ "$(grep -c "^libgmem-vmm: .*left to the process" "$tmp/alone.log")" = 1 ] ||
	{ echo "FAIL: not one line saying why:"; cat "$tmp/alone.log"; fail=1; }
# ... unless it must be served: then it stops before its mmap returns.
rm -f "$shm"
LD_PRELOAD=$(preload_list "$lib") GMEM_VMM_PATHS=$shm GMEM_VMM_SOCKET=$tmp/none.sock \
	GMEM_VMM_REQUIRED=1 timeout 60 "$standin" "$shm" $pages "$tmp/copy" \
	</dev/null >"$tmp/required.log" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "GMEM_VMM_REQUIRED=1: exiting" "$tmp/required.log" &&
	! grep -q "read $pages pages" "$tmp/required.log" ||
	{ echo "FAIL: required: exit $rc:"; cat "$tmp/required.log"; fail=1; }
exit $fail
