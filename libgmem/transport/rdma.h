/* SPDX-License-Identifier: MIT */
/*
 * rdma.h - the RDMA transport's one-sided data path: librdmacm connections
 * over an IP address, RC queue pairs, a source region registered for remote
 * read and RDMA READs of page runs posted by the destination. The framed
 * control stream (HELLO, STATE, digests) stays on the stream transport;
 * page bytes move without the source's CPU. Built only with libibverbs and
 * librdmacm (rdma-stub.c otherwise: every call returns -EOPNOTSUPP).
 */
#ifndef GMEM_TRANSPORT_RDMA_H
#define GMEM_TRANSPORT_RDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Queue pairs of a destination: urgent reads never wait behind the push. */
enum rdmat_qp {
	RDMAT_QP_URGENT = 0,
	RDMAT_QP_PUSH = 1,
	RDMAT_NR_QPS = 2,
};

/* Reads in flight per queue pair (and completion queue entries). */
#define RDMAT_DEPTH 128U

/* One endpoint: a listener with its exposed memory (source), or the
 * destination's connected queue pairs with its local memory. */
struct rdmat;

/* A finished read: the caller's @wr_id and -errno (0 = the bytes landed). */
struct rdmat_done {
	uint64_t wr_id;
	int res;
};

/* RDMA devices present (>= 0); -EOPNOTSUPP built without RDMA. */
int rdmat_devices(void);

/*
 * Source: binds rdma_cm to "host:port" (a specific address: it names the
 * device), checks that the device's port is active and registers
 * [@base, @base + @len) for remote read. *@rkey and *@raddr go into HELLO.
 */
int rdmat_listen(const char *addr, void *base, size_t len, uint32_t *rkey,
		 uint64_t *raddr, struct rdmat **out, char *err, size_t err_len);
/* Source: accepts @nr queue pairs of one destination within @wait_ms,
 * dropping those of the destination before; a request the destination
 * gave up on is dropped and the wait goes on. -ECONNABORTED as soon as a
 * connection waits on the listening socket @knock_fd (-1: none): the
 * destination started over. */
int rdmat_accept(struct rdmat *rt, unsigned int nr, int wait_ms,
		 int knock_fd);

/*
 * Destination: connects RDMAT_NR_QPS queue pairs to "host:port" within
 * @wait_ms, trying again while the path is not usable yet (a port not
 * ACTIVE after its link came up, an address or route not resolved, the
 * server not accepting yet); reads then target the remote [@raddr, +len)
 * under @rkey.
 */
int rdmat_connect(const char *addr, uint32_t rkey, uint64_t raddr,
		  int wait_ms, struct rdmat **out, char *err, size_t err_len);
/* Destination: stops every read at once (they complete flushed, no byte
 * lands after), telling the source nothing: rdmat_destroy() disconnects
 * later, on a port that is up again. */
void rdmat_halt(struct rdmat *rt);
/* Destination: registers the memory reads land in (local write). */
int rdmat_reg_local(struct rdmat *rt, void *buf, size_t len);
/*
 * Posts one RDMA READ of @len bytes at remote offset @roff into @local
 * (inside the registered local memory). Unsignalled reads complete
 * silently when a later signalled one on the same queue pair does (RC
 * completes in order). Any thread; posts on one queue pair serialise.
 */
int rdmat_read(struct rdmat *rt, enum rdmat_qp qp, void *local, uint64_t roff,
	       uint32_t len, uint64_t wr_id, bool signal);
/* Reaps up to @max completions of @qp without waiting: count or -errno. */
int rdmat_poll(struct rdmat *rt, enum rdmat_qp qp, struct rdmat_done *done,
	       unsigned int max);
/* Sleeps until a completion may be ready on any queue pair, at most
 * @wait_ms: 0 or -errno. */
int rdmat_wait(struct rdmat *rt, int wait_ms);

/* "rxe0 port 1": the device and port in use. */
const char *rdmat_device(const struct rdmat *rt);
/* Text of the last error (device and failed operation). */
const char *rdmat_error(const struct rdmat *rt);
void rdmat_destroy(struct rdmat *rt);

#endif /* GMEM_TRANSPORT_RDMA_H */
