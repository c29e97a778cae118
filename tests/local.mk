# SPDX-License-Identifier: MIT
# make check: criterion unit tests (one binary per area) and shell tests of
# several processes or network namespaces (exit 77 = skipped, with a reason).
TEST_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) \
	-DGMEM_TRACES_DIR='"$(abs_top_srcdir)/traces"'
TEST_LDADD = libgmem/libgmem.la $(CRITERION_LIBS)
# Verbosity 1 makes criterion name each skipped test and its reason.
# LSAN_OPTIONS matters only in a --enable-sanitizers build.
AM_TESTS_ENVIRONMENT = top_builddir='$(abs_top_builddir)'; \
	top_srcdir='$(abs_top_srcdir)'; CRITERION_VERBOSITY_LEVEL=1; \
	LSAN_OPTIONS=suppressions='$(abs_top_srcdir)/tests/lsan.supp'; \
	tracesdir='$(tracesdir)'; \
	export top_builddir top_srcdir CRITERION_VERBOSITY_LEVEL LSAN_OPTIONS \
	tracesdir;

if HAVE_CRITERION
check_PROGRAMS += tests/test-region tests/test-fault
TESTS += tests/test-region tests/test-fault
tests_test_region_SOURCES = tests/test-region.c tests/helpers.c tests/helpers.h
tests_test_region_CFLAGS = $(TEST_CFLAGS)
tests_test_region_LDADD = $(TEST_LDADD)
tests_test_fault_SOURCES = tests/test-fault.c tests/helpers.c tests/helpers.h
tests_test_fault_CFLAGS = $(TEST_CFLAGS)
tests_test_fault_LDADD = $(TEST_LDADD)
check_PROGRAMS += tests/test-dirty
TESTS += tests/test-dirty
tests_test_dirty_SOURCES = tests/test-dirty.c tests/helpers.c tests/helpers.h
tests_test_dirty_CFLAGS = $(TEST_CFLAGS)
tests_test_dirty_LDADD = $(TEST_LDADD) -lpthread
# The trace parser of gmem-replay, compiled in directly.
check_PROGRAMS += tests/test-trace
TESTS += tests/test-trace
tests_test_trace_SOURCES = tests/test-trace.c bench/trace.c bench/trace.h
tests_test_trace_CFLAGS = $(TEST_CFLAGS)
tests_test_trace_LDADD = $(CRITERION_LIBS) $(ZLIB_LIBS)
# gmem-migrate's QMP client, compiled in, against a stand-in monitor.
check_PROGRAMS += tests/test-qmp
TESTS += tests/test-qmp
tests_test_qmp_SOURCES = tests/test-qmp.c pager/qmp.c pager/qmp.h
tests_test_qmp_CFLAGS = $(TEST_CFLAGS) $(JSONC_CFLAGS)
tests_test_qmp_LDADD = $(CRITERION_LIBS) $(JSONC_LIBS) -lpthread
# gmem-replay handed from a paused source to an --incoming destination.
check_PROGRAMS += tests/test-replay
TESTS += tests/test-replay
tests_test_replay_SOURCES = tests/test-replay.c tests/helpers.c tests/helpers.h
tests_test_replay_CFLAGS = $(TEST_CFLAGS) $(JSONC_CFLAGS) \
	-DGMEM_REPLAY_BIN='"$(abs_top_builddir)/bench/gmem-replay"'
tests_test_replay_LDADD = $(TEST_LDADD) $(JSONC_LIBS)
# Page server and remote source: two processes on loopback.
check_PROGRAMS += tests/test-remote
TESTS += tests/test-remote
# proto.c: the peers of an older gmem, built frame by frame.
tests_test_remote_SOURCES = tests/test-remote.c tests/helpers.c tests/helpers.h \
	libgmem/wire/proto.c libgmem/wire/proto.h
tests_test_remote_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/libgmem
tests_test_remote_CFLAGS = $(TEST_CFLAGS) $(ISAL_CFLAGS)
tests_test_remote_LDADD = $(TEST_LDADD) $(ISAL_LIBS) -lpthread
# A post-copy whose source is lost: SIGBUS, not a wait (UFFDIO_POISON).
check_PROGRAMS += tests/test-poison
TESTS += tests/test-poison
tests_test_poison_SOURCES = tests/test-poison.c tests/helpers.c tests/helpers.h
tests_test_poison_CFLAGS = $(TEST_CFLAGS)
tests_test_poison_LDADD = $(TEST_LDADD) -lpthread
# The wire protocol's encoder and checks, compiled in directly.
check_PROGRAMS += tests/test-seal
TESTS += tests/test-seal
tests_test_seal_SOURCES = tests/test-seal.c libgmem/wire/seal.c libgmem/wire/seal.h \
	libgmem/wire/frame.c libgmem/wire/frame.h libgmem/wire/proto.c libgmem/wire/proto.h
tests_test_seal_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/libgmem \
	-I$(srcdir)/libgmem/include
tests_test_seal_CFLAGS = $(TEST_CFLAGS) $(ISAL_CFLAGS) $(SODIUM_CFLAGS) \
	$(CRYPTO_CFLAGS)
tests_test_seal_LDADD = $(CRITERION_LIBS) $(ISAL_LIBS) $(SODIUM_LIBS) \
	$(CRYPTO_LIBS) -lpthread

check_PROGRAMS += tests/test-proto
TESTS += tests/test-proto
tests_test_proto_SOURCES = tests/test-proto.c libgmem/wire/proto.c libgmem/wire/proto.h
tests_test_proto_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/libgmem
tests_test_proto_CFLAGS = $(TEST_CFLAGS) $(ISAL_CFLAGS)
tests_test_proto_LDADD = $(CRITERION_LIBS) $(ISAL_LIBS)
# The migration engine in every mode, two processes on loopback.
check_PROGRAMS += tests/test-migrate
TESTS += tests/test-migrate
tests_test_migrate_SOURCES = tests/test-migrate.c tests/helpers.c tests/helpers.h
tests_test_migrate_CFLAGS = $(TEST_CFLAGS) $(XXHASH_CFLAGS)
tests_test_migrate_LDADD = $(TEST_LDADD) $(XXHASH_LIBS) -lpthread
# Huge pages: THP regions, hugetlbfs granularity, reserve shortage.
check_PROGRAMS += tests/test-huge
TESTS += tests/test-huge
tests_test_huge_SOURCES = tests/test-huge.c tests/helpers.c tests/helpers.h
tests_test_huge_CFLAGS = $(TEST_CFLAGS)
tests_test_huge_LDADD = $(TEST_LDADD)
if HAVE_NUMA
# NUMA placement (libnuma's get_mempolicy/move_pages check it) and PCI nodes.
check_PROGRAMS += tests/test-numa
TESTS += tests/test-numa
tests_test_numa_SOURCES = tests/test-numa.c tests/helpers.c tests/helpers.h
tests_test_numa_CFLAGS = $(TEST_CFLAGS) $(NUMA_CFLAGS)
tests_test_numa_LDADD = $(TEST_LDADD) $(NUMA_LIBS)
endif
# kmod-shim's test device: needs root and the module, so not in TESTS;
# tests/kmod-shim-vm.sh runs it in a VM (make check-vm).
check_PROGRAMS += tests/test-kmod-shim
tests_test_kmod_shim_SOURCES = tests/test-kmod-shim.c tests/helpers.c tests/helpers.h
tests_test_kmod_shim_CFLAGS = $(TEST_CFLAGS)
tests_test_kmod_shim_LDADD = $(TEST_LDADD) -lpthread
endif

# gmem-replay's control socket: query, pause, resume, verify, quit (socat).
EXTRA_DIST += tests/lsan.supp tests/lib.sh
dist_check_SCRIPTS += tests/replay-control.sh
TESTS += tests/replay-control.sh
# Where gmem-replay finds a trace by name (traces/, installed, $GMEM_TRACES).
dist_check_SCRIPTS += tests/replay-traces.sh
TESTS += tests/replay-traces.sh
# The programs' command lines: usage errors, addresses, --help, short
# options, the progress line of a peer that does not come.
dist_check_SCRIPTS += tests/cli.sh
TESTS += tests/cli.sh
# gmem-migrate through scripts/migrate-local: every mode end to end, then
# the error paths (bad trace, usage, missing host, a workload that dies).
# stall_ms through a slow link, against an observer of the workload.
dist_check_SCRIPTS += tests/migrate-modes.sh tests/migrate-errors.sh \
	tests/migrate-stall.sh
EXTRA_DIST += tests/progress-watch.py
TESTS += tests/migrate-modes.sh tests/migrate-errors.sh tests/migrate-stall.sh
# NUMA placement and 2 MiB pages through gmem-migrate and gmem-replay.
dist_check_SCRIPTS += tests/migrate-placement.sh
TESTS += tests/migrate-placement.sh

# gmem-pager and a destination in two network namespaces joined by a veth.
check_PROGRAMS += tests/pager-client
tests_pager_client_SOURCES = tests/pager-client.c
tests_pager_client_LDADD = libgmem/libgmem.la -lpthread
dist_check_SCRIPTS += tests/netns-pager.sh
TESTS += tests/netns-pager.sh
dist_check_SCRIPTS += tests/netns-crypto.sh
TESTS += tests/netns-crypto.sh

# gmem-pager --uffd-handler serving a second process's userfaultfd.
check_PROGRAMS += tests/uffd-vmm
tests_uffd_vmm_SOURCES = tests/uffd-vmm.c
dist_check_SCRIPTS += tests/uffd-handler.sh
TESTS += tests/uffd-handler.sh

# libgmem.so's dynamic symbols: gmem.h's functions under GMEM_1, no others.
dist_check_SCRIPTS += tests/exported-symbols.sh
TESTS += tests/exported-symbols.sh

# man/gmem.3 names every function gmem.h declares.
dist_check_SCRIPTS += tests/man-functions.sh
TESTS += tests/man-functions.sh

# The USDT trace points (docs/probes.md) against the notes in libgmem.so.
dist_check_SCRIPTS += tests/probes.sh
TESTS += tests/probes.sh

# README.md and docs/: short, no history, nothing outside the checkout.
dist_check_SCRIPTS += tests/docs.sh
TESTS += tests/docs.sh

# The TCP transport compiled in, with its ring's submit and the clock
# faked: a send the ring cannot take, connect_ms -1.
if HAVE_CRITERION
check_PROGRAMS += tests/test-tcp
TESTS += tests/test-tcp
tests_test_tcp_SOURCES = tests/test-tcp.c libgmem/transport/tcp.c
tests_test_tcp_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/libgmem
tests_test_tcp_CFLAGS = $(TEST_CFLAGS) $(URING_CFLAGS)
tests_test_tcp_LDADD = $(CRITERION_LIBS) $(URING_LIBS) -lpthread
endif

# gmem_remote_connect()'s checks: the key on refusal, its set-up's errors.
if HAVE_CRITERION
check_PROGRAMS += tests/test-connect
TESTS += tests/test-connect
tests_test_connect_SOURCES = tests/test-connect.c
tests_test_connect_CFLAGS = $(TEST_CFLAGS)
tests_test_connect_LDADD = $(TEST_LDADD)
endif

# gmem_region_adopt_uffd(): list checks and serving a mapping list.
if HAVE_CRITERION
check_PROGRAMS += tests/test-external
TESTS += tests/test-external
tests_test_external_SOURCES = tests/test-external.c tests/helpers.c tests/helpers.h
tests_test_external_CFLAGS = $(TEST_CFLAGS)
tests_test_external_LDADD = $(TEST_LDADD)
endif

# The RDMA transport on a real device: skipped (77) without one;
# tests/rdma-vm.sh runs it inside the VM rig, on soft-RoCE (make check-vm).
dist_check_SCRIPTS += tests/vm-rdma.sh tests/rdma-vm.sh tests/vm-migrate-rdma.sh \
	tests/vm-recover-rdma.sh
TESTS += tests/vm-rdma.sh tests/vm-migrate-rdma.sh tests/vm-recover-rdma.sh
VM_TESTS += tests/rdma-vm.sh
if HAVE_CRITERION
check_PROGRAMS += tests/test-transport-rdma
TESTS += tests/test-transport-rdma
tests_test_transport_rdma_SOURCES = tests/test-transport-rdma.c \
	tests/helpers.c tests/helpers.h
tests_test_transport_rdma_CFLAGS = $(TEST_CFLAGS)
tests_test_transport_rdma_LDADD = $(TEST_LDADD) -lpthread
endif
# libgmem-vmm.so preloaded into a process that knows nothing of gmem.
check_PROGRAMS += tests/vmm-standin
tests_vmm_standin_SOURCES = tests/vmm-standin.c
dist_check_SCRIPTS += tests/vmm-preload.sh
TESTS += tests/vmm-preload.sh
# The same under an unmodified QEMU booting a guest kernel (skips without).
dist_check_SCRIPTS += tests/vmm-qemu.sh
TESTS += tests/vmm-qemu.sh
dist_check_SCRIPTS += tests/vmm-qmp-migrate.sh
TESTS += tests/vmm-qmp-migrate.sh
