/* SPDX-License-Identifier: MIT */
/*
 * server.h - the page server's state, shared by server-accept.c (buffers,
 * listening, accepting a connection set), server.c (urgent requests,
 * pre-copy, switchover: the caller's thread), server-push.c (the background
 * push: one thread per bulk connection) and server-recover.c.
 */
#ifndef GMEM_SERVER_H
#define GMEM_SERVER_H

#include <pthread.h>

#include "wire/auth.h"
#include "internal.h"
#include "wire/frame.h"

#define CTL_SLOTS 8
#define BULK_SLOTS 4
#define RUN_BYTES (256U << 10) /* push/pre-copy frame payload (4 KiB pages) */
#define WORK_MAX 4096U         /* urgent work items queued */
#define PREFETCH_MAX 256U      /* fault-around hints queued for their sender */
#define PUSH_TIERS 16U         /* gmem_server_push_first() calls kept */
#define IDLE_WAIT_NS 5000000LL
/* The owner's fill gate: how often waiting pages look at its mark, and how
 * long it may stand still before the session fails. */
#define FILL_POLL_NS 50000LL
#define FILL_STALL_NS (10ULL * 1000000000ULL)
#define RX_SLACK 4096U

enum work_type { WORK_PAGES, WORK_DIGEST };

struct srv_work {
	uint64_t pgoff;
	uint32_t nr;
	uint32_t type;
};

struct srv_slot {
	struct transport_req req;
	uint8_t *buf;
	bool busy;
};

struct srv_conn {
	unsigned int nr_slots;
	unsigned int busy;
	uint32_t tx_seq;
	/* Sealed connection: what this server sends (by whoever sends on
	 * it: the caller's thread, or the connection's pusher). */
	struct seal tx;
	struct srv_slot slots[CTL_SLOTS];
	struct wire_rx rx;
};

/*
 * The background push. Each bulk connection has a pusher thread: it claims
 * the next run of needed pages under @lock and sends it in place from the
 * region with blocking sends, so checksums and copies of several
 * connections proceed on several cores. Fault-around hints (REQ with
 * PROTO_F_PREFETCH) have a thread and connection of their own, so the next
 * fault's answer never queues behind them, nor they behind the push.
 * Urgent pages and NEED come through the caller's thread.
 *
 * Claims follow the tiers first (gmem_server_push_first(): the workload's
 * working set, most recently written first), each in address order from
 * its own cursor, then every other needed page in address order.
 */
struct srv_push {
	pthread_mutex_t lock;   /* cursors, @active, @stop; claims of @need */
	pthread_cond_t cond;    /* the pushers wait here */
	pthread_cond_t hint_cond; /* the fault-around sender waits here */
	struct bitmap tiers[PUSH_TIERS]; /* set before the push starts */
	uint64_t tier_cursor[PUSH_TIERS];
	unsigned int nr_tiers;
	uint64_t cursor;        /* next page to look at, address order */
	bool active;            /* a NEED came */
	bool stop;
	/* Fault-around hints not yet sent. */
	struct srv_work prefetch[PREFETCH_MAX];
	unsigned int prefetch_head, prefetch_tail;
	int error;              /* first pusher error (atomic) */
	char err[128];
	unsigned int nr_threads;
	struct srv_pusher {
		struct gmem_server *s;
		unsigned int conn;
		bool hints;     /* the fault-around connection's sender */
		pthread_t thread;
	} threads[PROTO_MAX_CONNS - 1];
};

struct gmem_server {
	struct gmem_region *r;
	const uint8_t *base;   /* where page bytes are read */
	const struct transport_ops *ops; /* the session's transport */
	struct transport t;
	int lfd;
	uint16_t port;
	uint64_t session;
	struct proto_geom geom;
	unsigned int nr_conns; /* 0 until a destination is accepted */
	/* Bulk connections: 1..nr_bulk; a fault-around one after them when
	 * @nr_conns says so. */
	unsigned int nr_bulk;
	struct srv_conn conns[PROTO_MAX_CONNS];
	uint8_t *mem;
	size_t mem_len;
	uint32_t slot_cap;     /* payload bytes a send slot holds */
	struct bitmap need;    /* pages still to push */
	bool state_sent, done;
	uint64_t precopy_frames;
	struct srv_work work[WORK_MAX];
	unsigned int work_head, work_tail;
	uint64_t last_rx_ns;
	struct transport_req *batch[PROTO_MAX_CONNS * CTL_SLOTS];
	unsigned int nr_batch;
	int error;
	char err[192];
	struct gmem_remote_stats stats; /* stat_add() where pushers count */
	struct srv_push push;
	struct auth_key key;   /* len 0: destinations need not authenticate */
	/* Post-copy recovery (server-recover.c): 0 = off, the listening
	 * socket closes after the accept; else how long to wait for the
	 * destination to come back (-1: forever). */
	int recover_ms;
	bool link_lost;        /* the error in @error is the link's */
	uint64_t last_lfd_ns;  /* last look for a returning destination */
	uint64_t paused_since_ns; /* atomic (progress ticker); 0 = serving */
	/* Offered one-sided reads (gmem_server_offer_rdma(), a transport
	 * with TRANSPORT_CAP_READ): the region exposed through @reads (ops
	 * NULL: not offered) as @win; @reads_on once the destination took
	 * it. */
	struct transport reads;
	struct transport_window win;
	bool reads_on;
	char transport[80];
	/* The region's fill gate (gmem_region_fill_gate()): its mark when
	 * last seen rising, and when (fill_check()). */
	uint64_t fill_mark, fill_since_ns;
};

/* server.c */
bool srv_filled(const struct gmem_server *s, uint64_t pgoff, uint64_t nr);
int srv_err(struct gmem_server *s, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Accepts a control connection and the bulk ones it announces, within
 * @wait_ms each; @resume: the control HELLO must resume this session. */
int srv_accept_set(struct gmem_server *s, int wait_ms, bool resume);
/* Fresh endpoint, slots and receive buffers; no connection. */
int srv_conns_reset(struct gmem_server *s);
/* The next run of set bits of @b at or after *@cursor, at most
 * @max long; clears it in @b when @take. Returns its length (0: none). */
uint32_t srv_next_run(struct bitmap *b, uint64_t *cursor, uint32_t max,
		      bool take);

/* When the serving thread paused for a recovery (0: serving), and how
 * many recoveries came before; any thread. */
uint64_t srv_paused_since_ns(const struct gmem_server *s);
uint64_t srv_recoveries(const struct gmem_server *s);

/* server-accept.c: best effort, tells the peer of connection @conn why it
 * is being dropped (an ERROR frame with errno @err). */
void srv_send_error(struct gmem_server *s, unsigned int conn, int err,
		    const char *why);

/* server-push.c */
/* Adds the pages of a NEED frame (@bitmap: its little-endian payload) to
 * the push and wakes the pushers. */
void push_need(struct gmem_server *s, const struct proto_hdr *h,
	       const uint8_t *bitmap);
/* Queues the pages of a REQ with PROTO_F_PREFETCH for the fault-around
 * connection's sender; false when the queue is full. */
bool push_prefetch(struct gmem_server *s, const struct proto_hdr *h);
/* Starts one pusher per bulk connection, and the fault-around connection's
 * sender; push_stop() ends and joins them.
 * push_error() is a pusher's error, 0 if none. */
int push_start(struct gmem_server *s);
void push_stop(struct gmem_server *s);
int push_error(struct gmem_server *s);
/* Frees what gmem_server_push_first() kept. */
void push_tiers_free(struct gmem_server *s);
/* Forgets every page the destination asked for (it sends NEED again after
 * a recovery); pushers must be stopped. */
void push_reset(struct gmem_server *s);

/* server-recover.c */
/* Whether a destination is knocking on the listening socket again. */
bool srv_destination_back(struct gmem_server *s);
/* After a broken link: drops the connections, waits for the destination
 * to resume the session, restarts the push. 0 or the error that ends. */
int srv_recover(struct gmem_server *s);

#endif /* GMEM_SERVER_H */
