/* SPDX-License-Identifier: MIT */
/*
 * migrate-cli.h - gmem-migrate's pieces: options, the workload it drives
 * (through its control socket) and the report it prints.
 */
#ifndef GMEM_PAGER_MIGRATE_CLI_H
#define GMEM_PAGER_MIGRATE_CLI_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include <gmem.h>

#include "key.h"

/* Exit codes, one per failure class (see --help). */
enum {
	EXIT_OK = 0,
	EXIT_INTERNAL = 1,   /* out of memory, a missing kernel feature */
	EXIT_USAGE = 2,      /* bad options */
	EXIT_WORKLOAD = 3,   /* control socket: unreachable, error, died */
	EXIT_NETWORK = 4,    /* peer unreachable, silent, vanished, garbage */
	EXIT_DIGEST = 5,     /* pages differ after migration */
	EXIT_UNCONVERGED = 6, /* pre-copy did not converge, cancelled */
	EXIT_AUTH = 7,        /* the peer failed authentication */
	EXIT_UNRECOVERED = 8  /* link lost in post-copy, peer not back in time */
};

struct migrate_opts {
	bool dest;
	const char *control;
	const char *qmp;       /* --qmp: a QEMU's monitor instead */
	const char *qemu_uri;  /* --qemu-uri: QEMU's device state channel */
	const char *uffd_socket; /* dest --qmp: libgmem-vmm.so's hand-over */
	const char *memdev;    /* --memdev: the backend gmem migrates */
	const char *addr;
	struct gmem_migrate_params params;
	const char *json_path; /* also write the report here */
	bool quiet;
	bool keep_source;      /* do not quit the source workload at the end */
	bool verify;           /* destination: the workload checks every page */
	int observe_ms;        /* destination: watch the workload after */
	int numa_node;         /* destination: place the region here; -1 not */
	bool no_prealloc;      /* destination: leave the page cache to post-copy */
	const char *key_file;  /* --key-file; else GMEM_KEY */
	struct key key;
	bool insecure;         /* --insecure: keyless off loopback */
};

/* The workload on one side and what the migration learnt of it. */
struct workload {
	int ctl;
	bool quiet;
	const struct migrate_opts *opts;
	json_object *info;      /* query reply before the migration */
	json_object *paused;    /* source: the pause reply */
	json_object *after;     /* destination: query reply at the end */
	json_object *settled;   /* destination: query reply once a step at
				 * normal pace followed the last page */
	json_object *verified;  /* destination: verify reply */
	uint64_t src_last_write_ns; /* destination: from the device state */
	uint64_t resumed_ns;    /* destination: the resume reply's resume_ns */
	json_object *src_steps; /* destination: the source's step times */
	bool shown;             /* progress lines in a log: the last one */
	uint32_t shown_phase, shown_round;
	uint64_t shown_ns;
	uint32_t pause_round;   /* the pause on the progress line */
	uint64_t pause_from_ns;
};

int migrate_source(const struct migrate_opts *o);
int migrate_dest(const struct migrate_opts *o);

/* The final JSON report (consumes nothing). */
json_object *report_build(const struct migrate_opts *o,
			  const struct gmem_migrate_stats *st,
			  const struct workload *w, int ret);
void report_emit(const struct migrate_opts *o, json_object *rep);
/* Dest: the blocked_* fields (@r may be NULL: no per-thread list). */
void report_add_blocked(json_object *rep, const struct gmem_migrate_stats *st,
			const struct gmem_region *r);
/* The progress line on stderr; @ctx is a side, whose first member is its
 * struct workload. */
void progress_print(void *ctx, const struct gmem_migrate_progress *p);

#endif
