// SPDX-License-Identifier: MIT
/*
 * rdma-ops.c - the RDMA transport's ops table: its streams (the framed
 * control and bulk connections: HELLO, STATE, digests) are TCP's, over the
 * same IP address rdma_cm resolves; its one-sided reads are RDMA READs on
 * RC queue pairs (rdma.c, or rdma-stub.c's -EOPNOTSUPP in a build without
 * libibverbs). Also the lookup of transports by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/rdma.h"
#include "transport/transport.h"

_Static_assert((int)TRANSPORT_LANE_URGENT == (int)RDMAT_QP_URGENT &&
	       (int)TRANSPORT_LANE_PUSH == (int)RDMAT_QP_PUSH,
	       "lanes are queue pairs");

/* A reads endpoint: the device's queue pairs and registered memory, and
 * the last error's text (kept when @rt could not be made). */
struct rd_ep {
	struct rdmat *rt;
	char err[192];
};

static int rd_listen(const char *addr, uint16_t *port)
{
	return transport_tcp_ops.listen(addr, port);
}

static int rd_accept(int lfd, int wait_ms)
{
	return transport_tcp_ops.accept(lfd, wait_ms);
}

static int rd_connect(const char *addr, int wait_ms)
{
	return transport_tcp_ops.connect(addr, wait_ms);
}

static int rd_init(struct transport *t, unsigned int depth, void *buf,
		   size_t len)
{
	int ret = transport_tcp_ops.init(t, depth, buf, len);

	/* The endpoint is TCP's; it says which transport it serves. */
	if (ret == 0)
		t->ops = &transport_rdma_ops;
	return ret;
}

static int rd_add_conn(struct transport *t, int fd)
{
	return transport_tcp_ops.add_conn(t, fd);
}

static int rd_submit(struct transport *t, struct transport_req **reqs,
		     unsigned int nr)
{
	return transport_tcp_ops.submit(t, reqs, nr);
}

static int rd_queue(struct transport *t, struct transport_req **reqs,
		    unsigned int nr)
{
	return transport_tcp_ops.queue(t, reqs, nr);
}

static int rd_poll(struct transport *t, struct transport_req **done,
		   unsigned int max, int64_t wait_ns)
{
	return transport_tcp_ops.poll(t, done, max, wait_ns);
}

static int rd_send_now(struct transport *t, unsigned int conn, const void *buf,
		       size_t len)
{
	return transport_tcp_ops.send_now(t, conn, buf, len);
}

static void rd_prioritize(struct transport *t, unsigned int conn)
{
	transport_tcp_ops.prioritize(t, conn);
}

static void rd_shutdown(struct transport *t, unsigned int conn)
{
	transport_tcp_ops.shutdown(t, conn);
}

static void rd_fini(struct transport *t)
{
	transport_tcp_ops.fini(t);
}

static struct rd_ep *ep_new(struct transport *t)
{
	struct rd_ep *ep = calloc(1, sizeof(*ep));

	t->ops = &transport_rdma_ops;
	t->priv = ep;
	return ep;
}

static int rd_expose(struct transport *t, const char *addr, void *base,
		     size_t len, struct transport_window *win)
{
	struct rd_ep *ep = ep_new(t);

	if (!ep)
		return -ENOMEM;
	return rdmat_listen(addr, base, len, &win->key, &win->addr, &ep->rt,
			    ep->err, sizeof(ep->err));
}

static int rd_accept_reads(struct transport *t, int wait_ms, int knock_fd)
{
	struct rd_ep *ep = t->priv;

	return rdmat_accept(ep->rt, RDMAT_NR_QPS, wait_ms, knock_fd);
}

static int rd_open_reads(struct transport *t, const char *addr,
			 const struct transport_window *win, int wait_ms)
{
	struct rd_ep *ep = ep_new(t);

	if (!ep)
		return -ENOMEM;
	return rdmat_connect(addr, win->key, win->addr, wait_ms, &ep->rt,
			     ep->err, sizeof(ep->err));
}

static int rd_read_into(struct transport *t, void *buf, size_t len)
{
	struct rd_ep *ep = t->priv;

	return rdmat_reg_local(ep->rt, buf, len);
}

static int rd_read(struct transport *t, unsigned int lane, void *local,
		   uint64_t off, uint32_t len, uint64_t cookie, bool signal)
{
	struct rd_ep *ep = t->priv;

	return rdmat_read(ep->rt, lane, local, off, len, cookie, signal);
}

static int rd_read_poll(struct transport *t, unsigned int lane,
			struct transport_read_done *done, unsigned int max)
{
	struct rd_ep *ep = t->priv;
	struct rdmat_done d[32];
	int n;

	n = rdmat_poll(ep->rt, lane, d, max < 32 ? max : 32);
	for (int i = 0; i < n; i++)
		done[i] = (struct transport_read_done){ d[i].wr_id, d[i].res };
	return n;
}

static int rd_read_wait(struct transport *t, int wait_ms)
{
	struct rd_ep *ep = t->priv;

	return rdmat_wait(ep->rt, wait_ms);
}

static const char *rd_read_device(const struct transport *t)
{
	const struct rd_ep *ep = t->priv;

	return ep && ep->rt ? rdmat_device(ep->rt) : "";
}

static const char *rd_read_error(const struct transport *t)
{
	const struct rd_ep *ep = t->priv;

	if (!ep)
		return "no memory for RDMA";
	return ep->rt ? rdmat_error(ep->rt) : ep->err;
}

static void rd_halt_reads(struct transport *t)
{
	struct rd_ep *ep = t->priv;

	if (ep && ep->rt)
		rdmat_halt(ep->rt);
}

static void rd_close_reads(struct transport *t)
{
	struct rd_ep *ep = t->priv;

	if (ep)
		rdmat_destroy(ep->rt);
	free(ep);
	t->priv = NULL;
}

const struct transport_ops transport_rdma_ops = {
	.name = "rdma",
	.caps = TRANSPORT_CAP_READ,
	.listen = rd_listen,
	.accept = rd_accept,
	.connect = rd_connect,
	.init = rd_init,
	.add_conn = rd_add_conn,
	.submit = rd_submit,
	.queue = rd_queue,
	.poll = rd_poll,
	.send_now = rd_send_now,
	.prioritize = rd_prioritize,
	.shutdown = rd_shutdown,
	.fini = rd_fini,
	.expose = rd_expose,
	.accept_reads = rd_accept_reads,
	.open_reads = rd_open_reads,
	.read_into = rd_read_into,
	.read = rd_read,
	.read_poll = rd_read_poll,
	.read_wait = rd_read_wait,
	.read_device = rd_read_device,
	.read_error = rd_read_error,
	.halt_reads = rd_halt_reads,
	.close_reads = rd_close_reads,
};

const struct transport_ops *transport_find(const char *name)
{
	if (!strcmp(name, transport_tcp_ops.name))
		return &transport_tcp_ops;
	if (!strcmp(name, transport_rdma_ops.name))
		return &transport_rdma_ops;
	return NULL;
}
