/* SPDX-License-Identifier: MIT */
/*
 * transport.h - the interface every page transport implements (an ops table,
 * as rdma-core's providers): stream connections grouped in one endpoint,
 * asynchronous batched sends and receives of whole buffers, completions
 * polled by the endpoint's owner thread. Knows nothing of frames or pages.
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

struct transport_ops {
	const char *name;
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
};

struct transport {
	const struct transport_ops *ops;
	void *priv;
};

extern const struct transport_ops transport_tcp_ops;

#endif /* GMEM_TRANSPORT_H */
