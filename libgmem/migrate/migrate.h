/* SPDX-License-Identifier: MIT */
/*
 * migrate.h - what the two sides of the migration engine share: checked
 * parameters, the switchover message header and the progress ticker.
 */
#ifndef GMEM_MIGRATE_H
#define GMEM_MIGRATE_H

#include "internal.h"

#define MIG_MAGIC 0x49474d47U /* "GMGI" */
#define MIG_VERSION 1U
#define MIG_MAX_STATE (64U << 10) /* the protocol's STATE limit */
#define MIG_HOT_EPOCH_MAX_MS 60000U

/*
 * Rides in front of the workload's device state in the switchover message,
 * so the destination can report the source's side. Little-endian fields.
 * mode is the one that ran (AUTO has become PRECOPY or HYBRID), which a
 * destination without AUTO accepts too.
 */
struct mig_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t mode;
	uint32_t rounds;
	uint32_t converged;
	uint32_t switch_reason; /* 0 from a source that has no AUTO */
	uint64_t precopy_pages;
	uint64_t freeze_pages;
	uint64_t stale_pages;
	uint64_t expected_downtime_ms;
	uint64_t start_ns;
	uint64_t pause_ns;
	uint64_t state_sent_ns;
	uint64_t link_bytes_per_s;
	uint64_t state_len; /* bytes of device state after this header */
};

/* Parameters with every default filled in. */
struct mig_params {
	uint32_t mode, flags, max_rounds, downtime_ms;
	uint32_t nr_bulk, nr_threads, fault_around;
	int wait_ms;
	const void *key; /* NULL: peers need not authenticate */
	uint32_t key_len;
	int recover_ms;  /* post-copy recovery; 0 = off */
	uint32_t hot_epoch_ms; /* POSTCOPY: the dirty log's epoch before the
				* pause, for the push order */
};

int mig_params_check(const struct gmem_migrate_params *p, struct mig_params *m);
void mig_hdr_encode(struct mig_hdr *h, const struct gmem_migrate_stats *st,
		    uint64_t state_len);
/* Checks a received header against @len bytes and copies the source's
 * figures into @st; returns the device state length or -EPROTO. */
int64_t mig_hdr_decode(const void *buf, size_t len,
		       struct gmem_migrate_stats *st);

/* Calls ops->progress about every 250 ms from a thread of its own while
 * the engine blocks in a transfer; pages_done is read from @region's
 * present count when set, else from @pages_done. */
struct mig_ticker {
	const struct gmem_migrate_ops *ops;
	void *ctx;
	struct gmem_migrate_progress cur; /* guarded by @lock */
	const struct gmem_region *region;
	uint64_t start_ns;
	uint64_t last_ns, last_done; /* previous tick of a watched region */
	/* A side's pause, read through its server's or remote end's
	 * accessors: when it began (0: none) and how many came before. */
	void (*pause)(const void *side, uint64_t *since_ns,
		      uint64_t *recoveries);
	const void *side;
	int recover_ms;
	pthread_mutex_t lock;
	/* Held around the progress callback, which the ticker thread and
	 * the engine's phase changes both call: never two at once. */
	pthread_mutex_t report_lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop;
};

void mig_ticker_start(struct mig_ticker *t, const struct gmem_migrate_ops *ops,
		      void *ctx, uint64_t start_ns);
/* Enters a phase: reports it at once and then on every tick. */
void mig_ticker_phase(struct mig_ticker *t, uint32_t phase, uint32_t round,
		      uint64_t pages_done, uint64_t pages_total,
		      uint64_t bytes_per_s, const struct gmem_region *watch);
/* Reports GMEM_PHASE_PAUSED while @pause says @side is paused. */
void mig_ticker_watch_pause(struct mig_ticker *t,
			    void (*pause)(const void *side, uint64_t *since_ns,
					  uint64_t *recoveries),
			    const void *side, int recover_ms);
void mig_ticker_stop(struct mig_ticker *t);

#endif /* GMEM_MIGRATE_H */
