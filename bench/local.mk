# SPDX-License-Identifier: MIT
# Benchmarks (never pass or fail; they print JSON lines) and the trace replay
# workload. `make bench` builds only these.
GMEM_BENCHES += bench/fault-bench
bench_fault_bench_SOURCES = bench/fault-bench.c bench/stats.c bench/stats.h
bench_fault_bench_LDADD = libgmem/libgmem.la -lpthread
