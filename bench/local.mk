# SPDX-License-Identifier: MIT
# Benchmarks (never pass or fail; they print JSON lines) and the trace replay
# workload. `make bench` builds only these.
GMEM_BENCHES += bench/fault-bench
bench_fault_bench_SOURCES = bench/fault-bench.c bench/stats.c bench/stats.h \
	bench/floor.c bench/floor.h $(CLI_SOURCES)
bench_fault_bench_CPPFLAGS = $(CLI_CPPFLAGS)
bench_fault_bench_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
bench_fault_bench_LDADD = libgmem/libgmem.la $(JSONC_LIBS) -lpthread

# gmem-replay: the trace-replay workload (bench/REPLAY.md), installed so
# that traces of one's own (gmem-trace-capture) replay too; tests use it.
# A trace name is looked up in this source tree, then the installed traces
# (traces/local.mk), then $GMEM_TRACES.
bin_PROGRAMS += bench/gmem-replay
bench_gmem_replay_SOURCES = bench/replay.c bench/replay.h \
	bench/replay-writer.c bench/replay-control.c \
	bench/trace.c bench/trace.h bench/trace-find.c bench/trace-find.h \
	bench/stats.c bench/stats.h $(CLI_SOURCES)
bench_gmem_replay_CPPFLAGS = $(CLI_CPPFLAGS) \
	-DGMEM_SRC_TRACES_DIR='"$(abs_top_srcdir)/traces"' \
	-DGMEM_PKG_TRACES_DIR='"$(tracesdir)"'
bench_gmem_replay_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(XXHASH_CFLAGS)
bench_gmem_replay_LDADD = libgmem/libgmem.la $(JSONC_LIBS) $(XXHASH_LIBS) \
	$(ZLIB_LIBS) -lpthread
EXTRA_DIST += bench/REPLAY.md
# The freeze-time benchmark (a script; results go to bench/results/).
EXTRA_DIST += bench/freeze bench/push-order bench/results/README.md

# Dirty log: collect time vs size and dirty fraction, write-loop slowdown.
GMEM_BENCHES += bench/dirty-bench
bench_dirty_bench_SOURCES = bench/dirty-bench.c bench/stats.c bench/stats.h \
	$(CLI_SOURCES)
bench_dirty_bench_CPPFLAGS = $(CLI_CPPFLAGS)
bench_dirty_bench_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(XXHASH_CFLAGS)
bench_dirty_bench_LDADD = libgmem/libgmem.la $(JSONC_LIBS) $(XXHASH_LIBS) \
	-lpthread

# Remote paging: fault latency vs bare uffd + TCP RTT, push vs socket blast.
GMEM_BENCHES += bench/remote-bench
bench_remote_bench_SOURCES = bench/remote-bench.c bench/stats.c bench/stats.h \
	bench/floor.c bench/floor.h $(CLI_SOURCES)
bench_remote_bench_CPPFLAGS = $(CLI_CPPFLAGS)
bench_remote_bench_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
bench_remote_bench_LDADD = libgmem/libgmem.la $(JSONC_LIBS) -lpthread
# The push, and whole migrations, on links of a NIC's rate (tc in a network
# namespace).
EXTRA_DIST += bench/link-push bench/link-migrate bench/link.sh bench/crypto-push \
	bench/delay-proxy.py
# An unmodified QEMU guest by gmem and by QEMU's own post-copy.
EXTRA_DIST += bench/qemu-postcopy bench/qemu-guest/dirty.c bench/qemu-guest/make-initrd
# RDMA vs perftest in the VM rig on soft-RoCE (tests/local.mk names $(VM)).
EXTRA_DIST += bench/rdma-perftest
bench-vm: bench
	timeout 900 $(VM) run $(abs_top_builddir) '$(abs_top_srcdir)/bench/rdma-perftest $(abs_top_builddir)'
.PHONY: bench-vm
