#!/bin/sh
# SPDX-License-Identifier: MIT
# An unmodified QEMU (TCG) whose guest RAM is a shared memory backend on
# /dev/shm, preloaded with libgmem-vmm.so: gmem-pager --uffd-handler serves
# that RAM from a zero image while a Debian kernel boots a busybox
# initramfs that prints a line and powers off. The line must appear and the
# guest's memory must have come by faults. The kernel is $GMEM_GUEST_KERNEL,
# else Debian's that scripts/setup fetched into the build folder, else the
# newest /boot/vmlinuz-*; without QEMU, a kernel, a static busybox
# or cpio the test skips, saying which.
set -u
. "$(dirname "$0")/lib.sh"
builddir=${top_builddir:-.}
pager=$builddir/pager/gmem-pager
lib=$builddir/libgmem/vmm/.libs/libgmem-vmm.so
qemu=$(command -v qemu-system-x86_64) ||
	{ echo "SKIP: no qemu-system-x86_64"; exit 77; }
kernel=$(guest_kernel "$builddir") ||
	{ echo "SKIP: no readable guest kernel (GMEM_GUEST_KERNEL, scripts/setup's guest/vmlinuz or /boot/vmlinuz-*)"; exit 77; }
busybox=$(command -v busybox) || { echo "SKIP: no busybox"; exit 77; }
# The initramfs has no libraries: busybox-static's binary, not a dynamic one.
# (ldd fails on a static binary).
if command -v ldd >/dev/null && ldd "$busybox" >/dev/null 2>&1; then
	echo "SKIP: $busybox is not static (busybox-static)"
	exit 77
fi
command -v cpio >/dev/null || { echo "SKIP: no cpio"; exit 77; }
[ -w /dev/shm ] || { echo "SKIP: no writable /dev/shm"; exit 77; }
tmp=$(mktemp -d) || exit 99
shm=/dev/shm/gmem-vmm-qemu.$$
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp" "$shm"' EXIT INT TERM

mkdir -p "$tmp/root/bin" && cp "$busybox" "$tmp/root/bin/busybox" || exit 99
printf '#!/bin/busybox sh\n/bin/busybox echo GMEM-VMM-GUEST-UP\n/bin/busybox poweroff -f\n' \
	>"$tmp/root/init" && chmod +x "$tmp/root/init" || exit 99
(cd "$tmp/root" && find . | cpio -o -H newc 2>/dev/null) >"$tmp/initrd" || exit 99
truncate -s 128M "$tmp/zero" || exit 99

timeout 150 "$pager" --uffd-handler "$tmp/h.sock" --file "$tmp/zero" \
	--wait-ms 60000 >"$tmp/pager.log" 2>&1 &
ppid=$!
pids="$pids $ppid"
wait_until 30 "$ppid" grep -q "waiting for a VMM" "$tmp/pager.log" ||
	{ echo "FAIL: gmem-pager did not start:"; cat "$tmp/pager.log"; exit 1; }
# QEMU is not built with the sanitizers: its own leaks are not reported.
GMEM_VMM_PATHS=$shm GMEM_VMM_SOCKET=$tmp/h.sock GMEM_VMM_REQUIRED=1 \
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	LD_PRELOAD=$(preload_list "$lib") timeout 120 "$qemu" -m 128M \
	-object memory-backend-file,id=ram0,mem-path=$shm,size=128M,share=on \
	-machine memory-backend=ram0 -kernel "$kernel" -initrd "$tmp/initrd" \
	-append "console=ttyS0 panic=-1" -display none -monitor none \
	-serial "file:$tmp/console" -no-reboot >"$tmp/qemu.log" 2>&1
qrc=$?
wait "$ppid"
prc=$?
cat "$tmp/qemu.log" "$tmp/pager.log"
tail -n 3 "$tmp/console" 2>/dev/null
fail=0
[ $qrc = 0 ] || { echo "FAIL: qemu exited $qrc"; fail=1; }
[ $prc = 0 ] || { echo "FAIL: gmem-pager exited $prc"; fail=1; }
grep -q "^GMEM-VMM-GUEST-UP" "$tmp/console" ||
	{ echo "FAIL: the guest's line is not on its console"; fail=1; }
grep -q "faults [1-9][0-9]* pages installed [1-9][0-9]* errors 0" "$tmp/pager.log" ||
	{ echo "FAIL: no guest page served by a fault"; fail=1; }
exit $fail
