# SPDX-License-Identifier: MIT
# kmod-shim/gmem_shim.ko, the device-fault bridge: built by Kbuild against
# $(KDIR) with --enable-kmod (into the build folder); tested in a VM by
# make check-vm, which builds it against the VM kernel's headers itself.
KMOD_SHIM_FILES = kmod-shim/Kbuild kmod-shim/Makefile kmod-shim/gmem_shim.h \
	kmod-shim/shim.h kmod-shim/region.c kmod-shim/fault.c kmod-shim/dev.c
EXTRA_DIST += $(KMOD_SHIM_FILES) kmod-shim/README.md
gmemincludedir = $(includedir)/gmem
gmeminclude_HEADERS = libgmem/include/gmem/uapi.h

VM_TESTS += tests/kmod-shim-vm.sh
EXTRA_DIST += tests/kmod-shim-vm.sh

if ENABLE_KMOD
all-local: kmod-shim/gmem_shim.ko
kmod-shim/gmem_shim.ko: $(KMOD_SHIM_FILES) libgmem/include/gmem/uapi.h
	$(AM_V_GEN)$(MAKE) -C $(srcdir)/kmod-shim KDIR='$(KDIR)' \
		B='$(abs_builddir)/kmod-shim' >/dev/null
clean-local:
	-$(MAKE) -C $(srcdir)/kmod-shim KDIR='$(KDIR)' \
		B='$(abs_builddir)/kmod-shim' clean >/dev/null
endif
