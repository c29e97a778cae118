# SPDX-License-Identifier: MIT
# examples/: programs that show how a VMM integrates libgmem. They build
# against the public header only and run in make check.
check_PROGRAMS += examples/vmm-migrate
examples_vmm_migrate_SOURCES = examples/vmm-migrate.c
examples_vmm_migrate_LDADD = libgmem/libgmem.la -lpthread
TESTS += examples/vmm-migrate
