// SPDX-License-Identifier: MIT
/*
 * rdma.c - the RDMA transport (libibverbs + librdmacm): connection set-up
 * with rdma_cm over an IP address, RC queue pairs, memory registration and
 * one-sided RDMA READs with completions polled in batches. The source side
 * only listens, registers and accepts: its CPU never touches a read. Knows
 * nothing of pages, frames or regions.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "transport/rdma.h"

/* RDMA READs one side may have outstanding at the responder (the IB
 * "initiator depth"/"responder resources"; soft-RoCE allows 128). */
#define RD_ATOMIC 16

struct rdmat_qpx {
	struct rdma_cm_id *id;
	struct ibv_cq *cq;
	pthread_mutex_t post_lock;
};

struct rdmat {
	struct rdma_event_channel *ch;
	struct rdma_cm_id *listen_id;   /* source */
	struct ibv_context *verbs;      /* borrowed from the first cm id */
	struct ibv_pd *pd;
	struct ibv_comp_channel *comp;
	struct ibv_mr *mr;
	uint8_t port;
	uint32_t rkey;                  /* destination: the source's region */
	uint64_t raddr;
	unsigned int nr_qps;
	struct rdmat_qpx qp[RDMAT_NR_QPS];
	char dev[64];
	char err[192];
};

static int fail(struct rdmat *rt, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rdmat *rt, int ret, const char *fmt, ...)
{
	int n = snprintf(rt->err, sizeof(rt->err), "%s: ",
			 rt->dev[0] ? rt->dev : "rdma");
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rt->err + n, sizeof(rt->err) - n, fmt, ap);
	va_end(ap);
	return ret;
}

int rdmat_devices(void)
{
	struct ibv_device **list;
	int n = 0;

	list = ibv_get_device_list(&n);
	if (!list)
		return errno == ENOSYS ? 0 : -errno;
	ibv_free_device_list(list);
	return n;
}

/* Splits "host:port" or "[v6]:port" and resolves it with rdma_cm's own
 * resolver; host "*" is refused: rdma_cm finds the device by address. */
static int addr_resolve(struct rdmat *rt, const char *addr, bool passive,
			struct rdma_addrinfo **res)
{
	struct rdma_addrinfo hints = {
		.ai_flags = passive ? RAI_PASSIVE : 0,
		.ai_port_space = RDMA_PS_TCP,
	};
	const char *colon = strrchr(addr, ':');
	char host[256];
	size_t n;

	if (!colon || !colon[1] || (size_t)(colon - addr) >= sizeof(host))
		return fail(rt, -EINVAL, "bad address \"%s\"", addr);
	n = colon - addr;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	memcpy(host, addr, n);
	host[n] = '\0';
	if (!n || !strcmp(host, "*"))
		return fail(rt, -EINVAL,
			    "\"%s\": RDMA needs the address of an RDMA device's interface, not a wildcard",
			    addr);
	if (rdma_getaddrinfo(host, colon + 1, &hints, res))
		return fail(rt, -EHOSTUNREACH, "rdma_getaddrinfo %s: %s", host,
			    strerror(errno));
	return 0;
}

/* Waits for the next connection event and checks that it is @want. */
static int cm_wait(struct rdmat *rt, enum rdma_cm_event_type want,
		   int wait_ms, struct rdma_cm_event **ev_out)
{
	struct pollfd pfd = { .fd = rt->ch->fd, .events = POLLIN };
	struct rdma_cm_event *ev;
	int ret, status;

again:
	ret = poll(&pfd, 1, wait_ms);
	if (ret == 0)
		return fail(rt, -ETIMEDOUT, "rdma_cm: no %s within %d ms",
			    rdma_event_str(want), wait_ms);
	if (ret < 0 || rdma_get_cm_event(rt->ch, &ev))
		return fail(rt, -errno, "rdma_get_cm_event: %s",
			    strerror(errno));
	/* A listener waiting for the next destination hears the end of
	 * the previous one's queue pairs first. */
	if (want == RDMA_CM_EVENT_CONNECT_REQUEST &&
	    (ev->event == RDMA_CM_EVENT_DISCONNECTED ||
	     ev->event == RDMA_CM_EVENT_TIMEWAIT_EXIT)) {
		rdma_ack_cm_event(ev);
		goto again;
	}
	if (ev->event != want) {
		status = ev->status;
		ret = ev->event == RDMA_CM_EVENT_REJECTED ? -ECONNREFUSED
			: ev->event == RDMA_CM_EVENT_ADDR_ERROR ||
			  ev->event == RDMA_CM_EVENT_ROUTE_ERROR ? -EHOSTUNREACH
			: -ECONNRESET;
		fail(rt, ret, "rdma_cm: %s (status %d) while waiting for %s",
		     rdma_event_str(ev->event), status, rdma_event_str(want));
		rdma_ack_cm_event(ev);
		return ret;
	}
	if (ev_out)
		*ev_out = ev;
	else
		rdma_ack_cm_event(ev);
	return 0;
}

/* The device behind @id: names it, checks its port, makes the PD. */
static int dev_open(struct rdmat *rt, struct rdma_cm_id *id)
{
	struct ibv_port_attr pa;

	if (!id->verbs)
		return fail(rt, -ENODEV, "no RDMA device serves this address (%d device(s) present)",
			    rdmat_devices());
	rt->verbs = id->verbs;
	rt->port = id->port_num;
	snprintf(rt->dev, sizeof(rt->dev), "%s port %u",
		 ibv_get_device_name(id->verbs->device), rt->port);
	if (ibv_query_port(rt->verbs, rt->port, &pa))
		return fail(rt, -errno, "ibv_query_port: %s", strerror(errno));
	if (pa.state != IBV_PORT_ACTIVE)
		return fail(rt, -ENETDOWN, "port is %s, not ACTIVE",
			    ibv_port_state_str(pa.state));
	rt->pd = ibv_alloc_pd(rt->verbs);
	rt->comp = rt->pd ? ibv_create_comp_channel(rt->verbs) : NULL;
	if (!rt->comp)
		return fail(rt, -errno, "ibv_alloc_pd/ibv_create_comp_channel: %s",
			    strerror(errno));
	/* rdmat_wait() polls the fd with a limit. */
	fcntl(rt->comp->fd, F_SETFL, fcntl(rt->comp->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

static int qp_create(struct rdmat *rt, struct rdma_cm_id *id)
{
	struct rdmat_qpx *q = &rt->qp[rt->nr_qps];
	struct ibv_qp_init_attr attr = {
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 0, /* selective signalling */
		.cap = {
			.max_send_wr = RDMAT_DEPTH,
			.max_recv_wr = 1,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
	};

	if (rt->nr_qps == RDMAT_NR_QPS)
		return fail(rt, -ENOSPC, "more queue pairs than %u",
			    RDMAT_NR_QPS);
	q->cq = ibv_create_cq(rt->verbs, RDMAT_DEPTH, NULL, rt->comp, 0);
	if (!q->cq)
		return fail(rt, -errno, "ibv_create_cq: %s", strerror(errno));
	attr.send_cq = attr.recv_cq = q->cq;
	q->id = id;
	pthread_mutex_init(&q->post_lock, NULL);
	rt->nr_qps++;
	if (rdma_create_qp(id, rt->pd, &attr))
		return fail(rt, -errno, "rdma_create_qp: %s", strerror(errno));
	return 0;
}

static struct rdmat *rdmat_new(void)
{
	struct rdmat *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	rt->ch = rdma_create_event_channel();
	if (!rt->ch) {
		snprintf(rt->err, sizeof(rt->err),
			 "rdma_cm: no RDMA device (rdma_create_event_channel: %s)",
			 strerror(errno));
		return rt;
	}
	fcntl(rt->ch->fd, F_SETFL, fcntl(rt->ch->fd, F_GETFL) | O_NONBLOCK);
	return rt;
}

/* Hands @rt to the caller on success; its error text to @err otherwise. */
static int finish(struct rdmat *rt, int ret, struct rdmat **out, char *err,
		  size_t err_len)
{
	if (ret < 0) {
		snprintf(err, err_len, "%s", rt->err);
		rdmat_destroy(rt);
		return ret;
	}
	*out = rt;
	return 0;
}

/* A new endpoint (*@rtp; NULL: no memory) with its event channel, and
 * @addr resolved into *@ai; the reason of a failure is in its error. */
static int endpoint_open(const char *addr, bool passive, struct rdmat **rtp,
			 struct rdma_addrinfo **ai)
{
	struct rdmat *rt = rdmat_new();

	*rtp = rt;
	if (!rt)
		return -ENOMEM;
	if (!rt->ch)
		return -ENODEV;
	return addr_resolve(rt, addr, passive, ai);
}

int rdmat_listen(const char *addr, void *base, size_t len, uint32_t *rkey,
		 uint64_t *raddr, struct rdmat **out, char *err, size_t err_len)
{
	struct rdma_addrinfo *ai = NULL;
	struct rdmat *rt;
	int ret = endpoint_open(addr, true, &rt, &ai);

	if (!rt)
		return ret;
	if (!ret && rdma_create_id(rt->ch, &rt->listen_id, NULL, RDMA_PS_TCP))
		ret = fail(rt, -errno, "rdma_create_id: %s", strerror(errno));
	if (!ret && rdma_bind_addr(rt->listen_id, ai->ai_src_addr))
		ret = fail(rt, -errno, "rdma_bind_addr %s: %s", addr,
			   strerror(errno));
	if (!ret)
		ret = dev_open(rt, rt->listen_id);
	if (!ret && rdma_listen(rt->listen_id, RDMAT_NR_QPS))
		ret = fail(rt, -errno, "rdma_listen: %s", strerror(errno));
	if (!ret) {
		/* Pins the region: the destination reads it at any time. */
		rt->mr = ibv_reg_mr(rt->pd, base, len,
				    IBV_ACCESS_LOCAL_WRITE |
				    IBV_ACCESS_REMOTE_READ);
		if (!rt->mr)
			ret = fail(rt, -errno,
				   "ibv_reg_mr of %zu bytes for remote read: %s (RLIMIT_MEMLOCK?)",
				   len, strerror(errno));
	}
	if (!ret) {
		*rkey = rt->mr->rkey;
		*raddr = (uintptr_t)base;
	}
	if (ai)
		rdma_freeaddrinfo(ai);
	return finish(rt, ret, out, err, err_len);
}

static struct rdma_conn_param conn_param(void)
{
	return (struct rdma_conn_param){
		.initiator_depth = RD_ATOMIC,
		.responder_resources = RD_ATOMIC,
		.retry_count = 7,
		.rnr_retry_count = 7,
	};
}

/* Disconnects and frees every queue pair. */
static void qps_drop(struct rdmat *rt)
{
	for (unsigned int i = 0; i < rt->nr_qps; i++) {
		struct rdmat_qpx *q = &rt->qp[i];

		rdma_disconnect(q->id);
		if (q->id->qp)
			rdma_destroy_qp(q->id);
		rdma_destroy_id(q->id);
		ibv_destroy_cq(q->cq);
		pthread_mutex_destroy(&q->post_lock);
	}
	rt->nr_qps = 0;
}

int rdmat_accept(struct rdmat *rt, unsigned int nr, int wait_ms)
{
	struct rdma_conn_param param = conn_param();

	/* A destination that comes back after a broken link (or a failed
	 * try) replaces the queue pairs of the one before. */
	qps_drop(rt);
	for (unsigned int i = 0; i < nr; i++) {
		struct rdma_cm_event *ev;
		int ret = cm_wait(rt, RDMA_CM_EVENT_CONNECT_REQUEST, wait_ms,
				  &ev);

		if (ret < 0)
			return ret;
		ret = qp_create(rt, ev->id);
		if (!ret && rdma_accept(ev->id, &param))
			ret = fail(rt, -errno, "rdma_accept: %s",
				   strerror(errno));
		rdma_ack_cm_event(ev);
		if (!ret)
			ret = cm_wait(rt, RDMA_CM_EVENT_ESTABLISHED, wait_ms,
				      NULL);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* One queue pair of a destination: resolve, create, connect. */
static int connect_one(struct rdmat *rt, const struct rdma_addrinfo *ai,
		       int wait_ms)
{
	struct rdma_conn_param param = conn_param();
	struct rdma_cm_id *id;
	int ret;

	if (rdma_create_id(rt->ch, &id, NULL, RDMA_PS_TCP))
		return fail(rt, -errno, "rdma_create_id: %s", strerror(errno));
	if (rdma_resolve_addr(id, NULL, ai->ai_dst_addr, wait_ms))
		ret = fail(rt, -errno, "rdma_resolve_addr: %s",
			   strerror(errno));
	else
		ret = cm_wait(rt, RDMA_CM_EVENT_ADDR_RESOLVED, wait_ms, NULL);
	if (!ret && rdma_resolve_route(id, wait_ms))
		ret = fail(rt, -errno, "rdma_resolve_route: %s",
			   strerror(errno));
	else if (!ret)
		ret = cm_wait(rt, RDMA_CM_EVENT_ROUTE_RESOLVED, wait_ms, NULL);
	if (!ret && !rt->pd)
		ret = dev_open(rt, id);
	if (!ret)
		ret = qp_create(rt, id);
	if (ret < 0) {
		if (rt->nr_qps && rt->qp[rt->nr_qps - 1].id == id)
			return ret; /* rdmat_destroy() frees it */
		rdma_destroy_id(id);
		return ret;
	}
	if (rdma_connect(id, &param))
		return fail(rt, -errno, "rdma_connect: %s", strerror(errno));
	return cm_wait(rt, RDMA_CM_EVENT_ESTABLISHED, wait_ms, NULL);
}

int rdmat_connect(const char *addr, uint32_t rkey, uint64_t raddr,
		  int wait_ms, struct rdmat **out, char *err, size_t err_len)
{
	struct rdma_addrinfo *ai = NULL;
	struct rdmat *rt;
	int ret = endpoint_open(addr, false, &rt, &ai);

	if (!rt)
		return ret;
	rt->rkey = rkey;
	rt->raddr = raddr;
	for (unsigned int i = 0; !ret && i < RDMAT_NR_QPS; i++)
		ret = connect_one(rt, ai, wait_ms);
	if (ai)
		rdma_freeaddrinfo(ai);
	return finish(rt, ret, out, err, err_len);
}

int rdmat_reg_local(struct rdmat *rt, void *buf, size_t len)
{
	rt->mr = ibv_reg_mr(rt->pd, buf, len, IBV_ACCESS_LOCAL_WRITE);
	if (!rt->mr)
		return fail(rt, -errno,
			    "ibv_reg_mr of %zu bytes: %s (RLIMIT_MEMLOCK?)",
			    len, strerror(errno));
	return 0;
}

int rdmat_read(struct rdmat *rt, enum rdmat_qp qp, void *local, uint64_t roff,
	       uint32_t len, uint64_t wr_id, bool signal)
{
	struct rdmat_qpx *q = &rt->qp[qp];
	struct ibv_sge sge = {
		.addr = (uintptr_t)local,
		.length = len,
		.lkey = rt->mr->lkey,
	};
	struct ibv_send_wr *bad, wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_READ,
		.send_flags = signal ? IBV_SEND_SIGNALED : 0,
		.wr.rdma = { .remote_addr = rt->raddr + roff, .rkey = rt->rkey },
	};
	int ret;

	pthread_mutex_lock(&q->post_lock);
	ret = ibv_post_send(q->id->qp, &wr, &bad);
	pthread_mutex_unlock(&q->post_lock);
	if (ret) /* verbs return a positive errno */
		return fail(rt, -ret, "ibv_post_send (RDMA READ, %u bytes): %s",
			    len, strerror(ret));
	return 0;
}

int rdmat_poll(struct rdmat *rt, enum rdmat_qp qp, struct rdmat_done *done,
	       unsigned int max)
{
	struct ibv_wc wc[32];
	int n;

	if (max > sizeof(wc) / sizeof(wc[0]))
		max = sizeof(wc) / sizeof(wc[0]);
	n = ibv_poll_cq(rt->qp[qp].cq, max, wc);
	if (n < 0)
		return fail(rt, -EIO, "ibv_poll_cq failed");
	for (int i = 0; i < n; i++) {
		done[i].wr_id = wc[i].wr_id;
		done[i].res = 0;
		if (wc[i].status == IBV_WC_SUCCESS)
			continue;
		/* A peer gone or a QP in error: every read in flight is
		 * flushed; the caller drops what they were filling. */
		done[i].res = wc[i].status == IBV_WC_WR_FLUSH_ERR ? -ECONNRESET
								 : -EIO;
		fail(rt, done[i].res, "RDMA READ completion on %s queue pair: %s (%d)",
		     qp == RDMAT_QP_URGENT ? "urgent" : "push",
		     ibv_wc_status_str(wc[i].status), wc[i].status);
	}
	return n;
}

int rdmat_wait(struct rdmat *rt, int wait_ms)
{
	struct pollfd pfd = { .fd = rt->comp->fd, .events = POLLIN };
	struct ibv_cq *cq;
	void *ctx;
	int ret;

	for (unsigned int i = 0; i < rt->nr_qps; i++)
		if (ibv_req_notify_cq(rt->qp[i].cq, 0))
			return fail(rt, -EIO, "ibv_req_notify_cq failed");
	/* A completion that came between the caller's last poll and the
	 * arming raises no event: @wait_ms bounds that delay. */
	ret = poll(&pfd, 1, wait_ms);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	while (ibv_get_cq_event(rt->comp, &cq, &ctx) == 0)
		ibv_ack_cq_events(cq, 1);
	return 0;
}

const char *rdmat_device(const struct rdmat *rt)
{
	return rt->dev;
}

const char *rdmat_error(const struct rdmat *rt)
{
	return rt->err;
}

void rdmat_destroy(struct rdmat *rt)
{
	if (!rt)
		return;
	qps_drop(rt);
	if (rt->mr)
		ibv_dereg_mr(rt->mr);
	if (rt->listen_id)
		rdma_destroy_id(rt->listen_id);
	if (rt->comp)
		ibv_destroy_comp_channel(rt->comp);
	if (rt->pd)
		ibv_dealloc_pd(rt->pd);
	if (rt->ch)
		rdma_destroy_event_channel(rt->ch);
	free(rt);
}
