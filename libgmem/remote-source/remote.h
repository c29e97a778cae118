/* SPDX-License-Identifier: MIT */
/*
 * remote.h - the destination end of a page server session, shared by
 * remote.c (connection, pre-copy, frame handling, public accessors) and
 * source-remote.c (the page source: urgent requests, the receive thread,
 * completion check).
 */
#ifndef GMEM_REMOTE_H
#define GMEM_REMOTE_H

#include "wire/auth.h"
#include "internal.h"
#include "wire/frame.h"

#define RM_OUTSTANDING 1024U    /* urgent requests timed at once */
#define RM_MAX_SAMPLES (1U << 20)
#define RM_MISMATCH_KEEP 64U
#define RM_IO_WAIT_NS 2000000LL
#define RM_SILENCE_TICK_NS 100000000LL /* how often a waiter checks it */

/*
 * Phases. CONNECTED -> (gmem_remote_precopy) PRECOPY -> READY once the state
 * and every pre-copy frame are in -> (attach) POSTCOPY -> (all present)
 * VERIFYING -> DONE; any error -> FAILED. With recovery on, a broken link in
 * POSTCOPY or VERIFYING -> PAUSED (any thread that sees it fail) -> the
 * phase it left, once the receive thread has reconnected (recover.c), or
 * FAILED when the time is up. Written under @lock; the receive thread
 * drives POSTCOPY onwards, the caller's thread the earlier ones.
 */
enum rm_phase {
	RM_CONNECTED,
	RM_PRECOPY,
	RM_READY,
	RM_POSTCOPY,
	RM_VERIFYING,
	RM_DONE,
	RM_FAILED,
	RM_PAUSED,
};

/* A bulk connection's receive thread: pages of several connections are
 * received, checked and installed at once, one core each. */
struct rm_bulk {
	struct gmem_remote *rm;
	unsigned int idx;
	pthread_t thread;
};

/* An urgent request in flight, for its service time. */
struct rm_req {
	uint64_t pgoff;
	uint64_t t0_ns;
	uint32_t nr;
	bool used;
};

struct rm_reads;

struct gmem_remote {
	/* Where the receive thread reconnects (gmem_remote_recover() may
	 * change it: under @lock); recovery off when @recover_ms is 0. */
	char addr[256];
	int recover_ms;
	int wait_ms;            /* connect + handshake limit */
	/* The migration's limit on the server's silence while a frame is
	 * awaited (rm_silent()); 0 = none. @last_rx_ns (atomic): when the
	 * last completion of any connection came. */
	int silence_ms;
	uint64_t last_rx_ns;
	size_t per_conn;        /* bytes of @mem per connection */
	/* One endpoint (ring) per connection: each is polled by one thread,
	 * the control one's by the caller's thread, then the receive
	 * thread; each bulk one's, and the fault-around one's, by its rm_bulk
	 * thread. Of the session's transport, @ops. */
	const struct transport_ops *ops;
	struct transport t[PROTO_MAX_CONNS];
	unsigned int nr_conns;
	struct wire_rx rx[PROTO_MAX_CONNS];
	struct rm_bulk bulk[PROTO_MAX_CONNS];
	unsigned int nr_bulk_running;
	uint8_t *mem;
	size_t mem_len;
	struct proto_geom geom;
	struct proto_geom expect; /* the caller's region; page_size 0: any */
	uint64_t session;
	struct gmem_region *r;
	uint32_t flags;         /* GMEM_REMOTE_* */
	/* PROTO_FEAT_PREFETCH agreed: connection @nr_bulk + 1 carries the
	 * answers to fault-around hints. */
	bool prefetch;
	unsigned int nr_bulk;
	struct auth_key key;    /* len 0: the server need not authenticate */

	/* Control-connection sends come from handler threads and the
	 * receive thread: @ctl_lock orders them and guards @reqs. */
	pthread_mutex_t ctl_lock;
	uint32_t ctl_seq;
	/* With a key: the control connection's sending seal, and where its
	 * frames are sealed (PROTO_HDR_LEN + a bitmap chunk + tag). */
	struct seal ctl_tx;
	uint8_t *ctl_buf;
	struct rm_req reqs[RM_OUTSTANDING];

	struct bitmap received; /* pre-copy pages in the page cache (atomic) */
	struct bitmap stale;
	struct bitmap valid;    /* received and not stale: no network needed */
	struct bitmap requested;
	/* Pre-copy frames arrive on bulk threads, STATE (with the count of
	 * frames sent) on the control connection: @precopy_frames is atomic;
	 * @precopy_expected is written before @state_in is set (release). */
	uint64_t precopy_frames, precopy_expected;
	bool state_in;
	uint8_t *state;
	uint32_t state_len;

	struct gmem_source *src;
	pthread_t io;
	bool io_running;
	bool stop;              /* atomic: the receive threads must return */
	uint64_t installed;     /* atomic: pages this source installed */
	uint64_t present_base;  /* pages present before attach */
	uint64_t local_cursor;  /* next valid page the thread installs */
	uint64_t *digests;      /* PROTO_MAX_DIGESTS local digests */
	uint64_t digests_checked;
	uint64_t mismatch[RM_MISMATCH_KEEP];

	pthread_mutex_t lock;   /* @phase, @error, @err, @samples */
	pthread_cond_t cond;
	enum rm_phase phase;
	enum rm_phase resume_phase; /* PAUSED: the phase to go back to */
	uint64_t paused_since_ns;   /* atomic: the pause's start; 0 = none */
	char pause_why[96];     /* what broke the link, for the final error */
	int error;
	char err[384];  /* a recovery's reason quotes two others */
	uint64_t *samples;
	uint64_t nr_samples;
	struct gmem_remote_stats stats; /* stat_add() */

	/* A transport with one-sided reads (TRANSPORT_CAP_READ, asked for
	 * with GMEM_REMOTE_RDMA): pages are read from the source's region,
	 * whose window came in the server's HELLO; NULL otherwise. */
	struct rm_reads *reads;
	struct transport_window win;
};

/* remote.c */
int rm_fail(struct gmem_remote *rm, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A connection failed: pauses the session (true) when recovery is on and
 * post-copy has begun; false: the caller fails as before. */
bool rm_pause(struct gmem_remote *rm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* (Re)creates the endpoint and receive state of every connection. */
int rm_endpoints_init(struct gmem_remote *rm);
void rm_endpoints_fini(struct gmem_remote *rm);
/* Opens connection @idx and exchanges HELLO (and AUTH) on it; @resume
 * asks to take the paused session back. On failure *@why says why. */
int rm_open_conn(struct gmem_remote *rm, const char *addr, unsigned int idx,
		 bool resume, char *why, size_t why_len);
enum rm_phase rm_phase(struct gmem_remote *rm);
/* Fails the session with -ETIMEDOUT (true) when the server sent nothing
 * for @silence_ms while something is awaited from it: the state (pre-copy),
 * pages (post-copy over TCP; RDMA reads need no frame) or digests. Never
 * while paused: the recovery has its own limit. */
bool rm_silent(struct gmem_remote *rm);
/* Arms rm_silent() with @ms (0: off), counting from now; before
 * gmem_remote_precopy() starts the receive threads. */
void rm_set_silence(struct gmem_remote *rm, int ms);
void rm_set_phase(struct gmem_remote *rm, enum rm_phase phase);
/* Reaps completions of connection @idx for up to @wait_ns and handles its
 * whole frames. */
int rm_step(struct gmem_remote *rm, unsigned int idx, int64_t wait_ns);
/* Stops and joins the bulk receive threads (idempotent). */
void rm_bulk_stop(struct gmem_remote *rm);
/* Starts one receive thread per bulk connection; they end by themselves
 * when the session pauses, and rm_bulk_join() reaps them. */
int rm_bulk_start(struct gmem_remote *rm);
void rm_bulk_join(struct gmem_remote *rm);
/* Sends one frame on the control connection, from any thread. Returns 0,
 * 1 when the session is paused (not sent: the recovery sends it again), or
 * a negative errno. */
int rm_ctl_send(struct gmem_remote *rm, struct proto_hdr *h,
		const void *payload);

/* source-remote.c */
int rm_install_pages(struct gmem_remote *rm, const struct proto_hdr *h,
		     const uint8_t *payload);
int rm_check_digests(struct gmem_remote *rm, const struct proto_hdr *h,
		     const uint8_t *payload);
int rm_send_need(struct gmem_remote *rm);
int rm_send_request(struct gmem_remote *rm, uint64_t pgoff, uint32_t nr,
		    bool hint);
int rm_send_digest_requests(struct gmem_remote *rm);

/* recover.c: run by the receive thread while PAUSED. Returns 0 once the
 * session runs again on new connections, or the error that failed it. */
int rm_recover(struct gmem_remote *rm);
/* When the session paused (0: not paused), and how many recoveries came
 * before; any thread. */
uint64_t rm_paused_since_ns(const struct gmem_remote *rm);
uint64_t rm_recoveries(const struct gmem_remote *rm);
/* Records one urgent request's service time. */
void rm_add_sample(struct gmem_remote *rm, uint64_t ns);

/* fetch.c: asks for a run of pages in the session's one way: a read of
 * the source's memory where the transport can (reads.c), else a request
 * the server answers (@hint: nobody waits on it). 0 also when paused: the
 * recovery asks again for every page in @requested. */
int rm_fetch(struct gmem_remote *rm, uint64_t pgoff, uint32_t nr, bool hint);

/* reads.c: the data path of one-sided reads (urgent reads, the push
 * pipeline, their completion thread). Open (again, after a recovery's
 * pause) the read lanes to "host:port" @addr; start them once the region
 * is attached; pause drops the lanes and gives back the claim of every
 * run in flight; free ends all. */
int rm_reads_open(struct gmem_remote *rm, const char *addr, char *why,
		  size_t why_len);
int rm_reads_start(struct gmem_remote *rm);
int rm_reads_request(struct gmem_remote *rm, uint64_t pgoff, uint64_t nr);
void rm_reads_pause(struct gmem_remote *rm);
void rm_reads_stop(struct gmem_remote *rm);
void rm_reads_free(struct gmem_remote *rm);

#endif /* GMEM_REMOTE_H */
