# SPDX-License-Identifier: MIT
# libgmem-vmm.so: LD_PRELOAD into an unmodified VMM (QEMU) to hand its
# shared memory backends to gmem-pager --uffd-handler. Self-contained (no
# libgmem, no config.h: it defines mmap and mmap64 as the ABI has them).
lib_LTLIBRARIES += libgmem/vmm/libgmem-vmm.la
libgmem_vmm_libgmem_vmm_la_SOURCES = libgmem/vmm/vmm.h \
	libgmem/vmm/preload.c libgmem/vmm/handoff.c
libgmem_vmm_libgmem_vmm_la_CPPFLAGS = -D_GNU_SOURCE
libgmem_vmm_libgmem_vmm_la_LIBADD = -ldl -lpthread
libgmem_vmm_libgmem_vmm_la_LDFLAGS = -module -avoid-version -shared \
	-Wl,--version-script=$(srcdir)/libgmem/vmm/libgmem-vmm.map
EXTRA_libgmem_vmm_libgmem_vmm_la_DEPENDENCIES = libgmem/vmm/libgmem-vmm.map
EXTRA_DIST += libgmem/vmm/libgmem-vmm.map
