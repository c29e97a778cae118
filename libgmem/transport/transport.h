/* SPDX-License-Identifier: MIT */
/*
 * transport.h - the interface every page transport implements (an ops table,
 * as rdma-core's providers): stream connections grouped in one endpoint,
 * asynchronous batched sends and receives of whole buffers, completions
 * polled by the endpoint's owner thread; and, where the transport can
 * (TRANSPORT_CAP_READ), one-sided reads: the destination fetches a run of
 * the source's exposed memory into an address of its own, without the
 * source's CPU. Knows nothing of frames or pages.
 */
#ifndef GMEM_TRANSPORT_H
#define GMEM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum transport_dir {
	TRANSPORT_SEND = 0,
	TRANSPORT_RECV = 1,
};

/*
 * One asynchronous request: move exactly @len bytes of @buf over connection
 * @conn (up to @len for a partial receive; @done says how many). The
 * transport retries short transfers itself; a request completes once all
 * bytes moved (res = 0) or on error (res = -errno; -ECONNRESET when
 * the peer closed the stream). @buf must lie inside the endpoint's
 * registered buffer when there is one. The caller owns the request and
 * keeps it alive until it completes. Sends on one connection go out and
 * complete in submission order, one after the other (two sends in flight on
 * one stream could interleave their bytes).
 */
struct transport_req {
	unsigned int conn;
	unsigned int dir; /* enum transport_dir */
	bool partial;     /* receive: complete once some bytes came (a
			   * stream read into a buffer with room to spare) */
	uint8_t *buf;
	uint32_t len;
	uint32_t done;    /* bytes moved so far (transport's) */
	int res;
	void *user;
	struct transport_req *next; /* transport's: queued behind a send */
};

struct transport;

/* What a transport can do beyond streams (transport_ops.caps). */
#define TRANSPORT_CAP_READ (1U << 0) /* the one-sided read ops below */

/* Names the memory a source exposes for one-sided reads; the destination
 * learns it from the source (in HELLO). */
struct transport_window {
	uint32_t key;
	uint64_t addr;
};

/* Read lanes of a destination: urgent reads never wait behind the push. */
enum transport_lane {
	TRANSPORT_LANE_URGENT = 0,
	TRANSPORT_LANE_PUSH = 1,
};

/* A finished read: its @cookie and 0 (the bytes landed) or -errno. */
struct transport_read_done {
	uint64_t cookie;
	int res;
};

struct transport_ops {
	const char *name;
	unsigned int caps; /* TRANSPORT_CAP_* */
	/* Binds and listens on "host:port" (port 0: any); *port gets the
	 * bound port. Returns a listening fd or -errno. */
	int (*listen)(const char *addr, uint16_t *port);
	/* Accepts one connection within @wait_ms (-1: forever): fd or -errno
	 * (-ETIMEDOUT). */
	int (*accept)(int lfd, int wait_ms);
	/* Connects to "host:port" within @wait_ms, retrying while refused:
	 * fd or -errno. */
	int (*connect)(const char *addr, int wait_ms);
	/* Sets up an endpoint of @depth outstanding requests whose buffers
	 * live in [@buf, @buf + @len) (registered with the device when it
	 * can be). */
	int (*init)(struct transport *t, unsigned int depth, void *buf,
		    size_t len);
	/* Adds a connected fd (the endpoint owns it from now on); returns
	 * its connection index. */
	int (*add_conn)(struct transport *t, int fd);
	/* Queues @nr requests and hands them to the device in one call. */
	int (*submit)(struct transport *t, struct transport_req **reqs,
		      unsigned int nr);
	/* Queues @nr requests for the next submit() or poll(), which hand
	 * them over in the same call (one system call saved per receive
	 * re-armed between two polls). */
	int (*queue)(struct transport *t, struct transport_req **reqs,
		     unsigned int nr);
	/* Reaps up to @max completed requests, waiting up to @wait_ns for
	 * the first (0: do not wait). Returns how many, or -errno. */
	int (*poll)(struct transport *t, struct transport_req **done,
		    unsigned int max, int64_t wait_ns);
	/* Sends a small message now from any thread, outside the endpoint's
	 * queue (urgent requests from fault handlers); callers serialise
	 * per connection. Returns 0 or -errno. */
	int (*send_now)(struct transport *t, unsigned int conn,
			const void *buf, size_t len);
	/* Queues a connection's packets ahead of the others' in the host's
	 * priority queueing (urgent requests and their answers). */
	void (*prioritize)(struct transport *t, unsigned int conn);
	/* Stops all traffic on a connection (outstanding requests fail). */
	void (*shutdown)(struct transport *t, unsigned int conn);
	void (*fini)(struct transport *t);

	/*
	 * TRANSPORT_CAP_READ only. The reads have an endpoint of their own
	 * (a struct transport set up by expose() or open_reads(), released
	 * by close_reads()), beside the stream endpoint, so that it outlives
	 * the connection sets a recovery replaces. Errors are -errno with a
	 * text in read_error().
	 */
	/* Source: exposes [@base, @base + @len) for reads by destinations
	 * that reach "host:port" @addr; *@win names it. */
	int (*expose)(struct transport *t, const char *addr, void *base,
		      size_t len, struct transport_window *win);
	/* Source: accepts one destination's read lanes within @wait_ms,
	 * dropping those of the one before (a recovered session's).
	 * -ECONNABORTED as soon as a connection waits on the listening
	 * socket @knock_fd (-1: none): the destination gave this try up
	 * and started over. */
	int (*accept_reads)(struct transport *t, int wait_ms, int knock_fd);
	/* Destination: opens read lanes to the source at @addr whose window
	 * is @win, within @wait_ms, trying again while the path is not
	 * usable yet (a link that just came up). */
	int (*open_reads)(struct transport *t, const char *addr,
			  const struct transport_window *win, int wait_ms);
	/* Destination: reads land in [@buf, @buf + @len) (registered with
	 * the device). */
	int (*read_into)(struct transport *t, void *buf, size_t len);
	/* Destination, any thread (posts on one lane serialise): fetches
	 * @len bytes at offset @off of the window into @local. Completes
	 * as a read_done of @cookie; unsignalled reads complete silently
	 * with the next signalled one on their lane (they complete in
	 * order). */
	int (*read)(struct transport *t, unsigned int lane, void *local,
		    uint64_t off, uint32_t len, uint64_t cookie, bool signal);
	/* Reaps up to @max finished reads of @lane without waiting: count
	 * or -errno. After a lost link every read in flight finishes with
	 * an error. */
	int (*read_poll)(struct transport *t, unsigned int lane,
			 struct transport_read_done *done, unsigned int max);
	/* Sleeps until a read may have finished, at most @wait_ms. */
	int (*read_wait)(struct transport *t, int wait_ms);
	/* The device and port the reads use ("rxe0 port 1"). */
	const char *(*read_device)(const struct transport *t);
	const char *(*read_error)(const struct transport *t);
	/* Destination: stops every read in flight at once (they finish
	 * with an error; no byte lands after) without a word to the
	 * source: a link that is down must carry no teardown (soft-RoCE's
	 * connection manager stops working for good after one). Only
	 * close_reads() may follow, once the link is back. */
	void (*halt_reads)(struct transport *t);
	void (*close_reads)(struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
	void *priv;
};

/* The transport called @name ("tcp", "rdma"), or NULL. The layers above
 * choose by name or capability, never by these tables' names. */
const struct transport_ops *transport_find(const char *name);

/* transport/ only. */
extern const struct transport_ops transport_tcp_ops;
extern const struct transport_ops transport_rdma_ops;

#endif /* GMEM_TRANSPORT_H */
