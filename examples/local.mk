# SPDX-License-Identifier: MIT
# examples/: programs that show how a VMM integrates libgmem. They build
# against the public header only and run in make check.
check_PROGRAMS += examples/vmm-migrate
examples_vmm_migrate_SOURCES = examples/vmm-migrate.c
examples_vmm_migrate_LDADD = libgmem/libgmem.la -lpthread
TESTS += examples/vmm-migrate
# A region filled from a snapshot file on first touch (the README's example).
check_PROGRAMS += examples/lazy-restore
examples_lazy_restore_SOURCES = examples/lazy-restore.c
examples_lazy_restore_LDADD = libgmem/libgmem.la
TESTS += examples/lazy-restore
