#!/bin/bash
# SPDX-License-Identifier: MIT
# The RDMA transport in a VM: boots the VM rig's kernel (../shared/vm) with
# a soft-RoCE device (rxe0) and runs tests/vm-rdma.sh,
# tests/vm-migrate-rdma.sh and tests/vm-recover-rdma.sh there, on the
# binaries of this build. Exit 77
# (skipped) with the reason where no VM can start.
# Run by make check-vm.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
vm=${GMEM_VM:-$top_srcdir/../shared/vm/vm}
export VMKIT=${VMKIT:-${XDG_CACHE_HOME:-$HOME/.cache}/gmem-vmkit}
# The rig's own limit on the guest (its default 600 s) is the one below.
export VM_TIMEOUT=${VM_TIMEOUT:-900}

skip() { echo "SKIP: $*"; exit 77; }

[ -x "$vm" ] || skip "no VM rig at $vm"
command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86 not installed (run: $vm setup)"
[ -f "$VMKIT/kver" ] || skip "the VM is not set up in $VMKIT (run: $vm setup)"
timeout 900 "$vm" run "$top_builddir" \
	"export top_builddir=$top_builddir top_srcdir=$top_srcdir; timeout 600 $top_srcdir/tests/vm-rdma.sh \
	&& timeout 400 $top_srcdir/tests/vm-migrate-rdma.sh \
	&& timeout 400 $top_srcdir/tests/vm-recover-rdma.sh"
