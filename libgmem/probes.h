/* SPDX-License-Identifier: MIT */
/*
 * probes.h - USDT trace points of the data path, provider "gmem"
 * (docs/probes.md lists each with its arguments). With <sys/sdt.h> each is
 * a nop and an ELF note that bpftrace, perf and systemtap attach to; its
 * arguments are only read when a tracer is attached. Without the header
 * (configure: --without-sdt) the probes compile to nothing.
 */
#ifndef GMEM_PROBES_H
#define GMEM_PROBES_H

#ifdef HAVE_SDT
#define SDT_USE_VARIADIC 1 /* STAP_PROBEV */
#include <sys/sdt.h>
#define GMEM_PROBE(name, ...) STAP_PROBEV(gmem, name, __VA_ARGS__)
#else
#define GMEM_PROBE(name, ...) do { } while (0)
#endif

/* Sides of a migration, the recover_* probes' first argument. */
#define GMEM_PROBE_SOURCE 0
#define GMEM_PROBE_DEST 1
/* What request_sent asked for: a faulting page (or a fill) on the control
 * connection, the pages around a fault, or a one-sided RDMA read. */
#define GMEM_PROBE_REQ_URGENT 0
#define GMEM_PROBE_REQ_HINT 1
#define GMEM_PROBE_REQ_RDMA 2

#endif
