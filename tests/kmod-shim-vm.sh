#!/bin/bash
# SPDX-License-Identifier: MIT
# kmod-shim in a VM: builds gmem_shim.ko against the VM kernel's headers,
# boots that kernel (../shared/vm), loads the module, runs test-kmod-shim,
# unloads the module, and checks that every page the device pinned was
# unpinned and that the kernel logged no warning. Exit 77 (skipped) with the
# reason where no VM can start. Run by make check-vm.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
vm=${GMEM_VM:-$top_srcdir/../shared/vm/vm}
export VMKIT=${VMKIT:-${XDG_CACHE_HOME:-$HOME/.cache}/gmem-vmkit}
kobj=$top_builddir/kmod-shim
test_bin=$top_builddir/tests/test-kmod-shim

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# The module's own counts: the kernel's nr_foll_pin_* are the whole
# guest's, where 9p and direct I/O pin and unpin pages of their own.
pins() {
	local p=/sys/module/gmem_shim/parameters
	echo "$(cat $p/pages_pinned) $(cat $p/pages_unpinned)"
}

# Inside the VM, as root: the module's whole life.
guest() {
	local counts rc=0
	dmesg -C
	insmod "$kobj/gmem_shim.ko" || fail "insmod gmem_shim.ko"
	[ -c /dev/gmem-shim ] || fail "no /dev/gmem-shim after insmod"
	CRITERION_VERBOSITY_LEVEL=1 "$test_bin" 2>&1 | tee "$kobj/test.log"
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	# From 6.7 the kernel has WP_ASYNC: its device-write case must run.
	if [ "$(printf '%s\n' 6.7 "$(uname -r)" | sort -V | head -1)" = 6.7 ] &&
	   grep -q 'SKIP.*wp_async' "$kobj/test.log"; then
		fail "the wp-async case skipped on $(uname -r)"
	fi
	read -r -a counts <<<"$(pins)"
	rmmod gmem_shim || fail "rmmod refused after the tests' processes exited"
	local acquired=${counts[0]} released=${counts[1]}
	echo "pages pinned: $acquired, unpinned: $released"
	[ "$acquired" -gt 0 ] || fail "the device pinned no page"
	[ "$acquired" = "$released" ] || fail "pinned pages left behind"
	# RCU stall reports are left out: they come from the emulated guest's
	# vCPUs being starved by a loaded host, and a stall the module caused
	# hangs the tests, which fails them anyway.
	if dmesg | grep -E -A20 'WARNING:|BUG:|Oops|general protection|blocked for more than'; then
		fail "kernel warnings during the tests"
	fi
	return $rc
}

if [ "${1:-}" = --guest ]; then
	guest
	exit
fi

[ -x "$vm" ] || skip "no VM rig at $vm"
command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86 not installed (run: $vm setup)"
[ -f "$VMKIT/kver" ] || skip "the VM is not set up in $VMKIT (run: $vm setup)"
kver=$(cat "$VMKIT/kver")
kdir=/lib/modules/$kver/build
[ -d "$kdir" ] || skip "no headers for the VM kernel $kver (apt-get install linux-headers-$kver)"
[ -x "$test_bin" ] || fail "$test_bin not built (make check-vm builds it)"

mkdir -p "$kobj"
make -C "$top_srcdir/kmod-shim" KDIR="$kdir" B="$kobj" >"$kobj/build.log" 2>&1 ||
	{ tail -20 "$kobj/build.log"; fail "gmem_shim.ko does not build against $kver"; }
if grep -E 'warning:' "$kobj/build.log"; then
	fail "gmem_shim.ko builds with warnings"
fi
VM_RXE=0 "$vm" run "$top_builddir" \
	"top_srcdir='$top_srcdir' top_builddir='$top_builddir' bash '$top_srcdir/tests/kmod-shim-vm.sh' --guest"
