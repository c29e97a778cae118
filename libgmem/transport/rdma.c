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
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "transport/rdma.h"

/* RDMA READs one side may have outstanding at the responder (the IB
 * "initiator depth"/"responder resources"; soft-RoCE allows 128). */
#define RD_ATOMIC 16
/* A destination tries its queue pairs again this often while the path is
 * not usable yet; rdma_cm's own resolution steps get this long at most. */
#define RETRY_MS 100
#define STEP_MS 2000

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

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int64_t deadline_of(int wait_ms)
{
	return wait_ms < 0 ? INT64_MAX : ms_now() + wait_ms;
}

/* Milliseconds left until @deadline for poll() (-1: none), at most @cap
 * where @cap > 0. */
static int ms_left(int64_t deadline, int cap)
{
	int64_t left;

	if (deadline == INT64_MAX)
		return cap > 0 ? cap : -1;
	left = deadline - ms_now();
	left = left < 0 ? 0 : left;
	return cap > 0 && left > cap ? cap : (int)left;
}

/* The time one of rdma_cm's resolution steps gets. */
static int step_ms(int64_t deadline)
{
	int ms = ms_left(deadline, STEP_MS);

	return ms > 0 ? ms : 1;
}

/*
 * The next connection event by @deadline. With @knock_fd >= 0 (a
 * listening socket), -ECONNABORTED once a connection waits there instead:
 * the peer started over.
 */
static int cm_next(struct rdmat *rt, int64_t deadline, int knock_fd,
		   const char *what, struct rdma_cm_event **ev)
{
	struct pollfd pfd[2] = {
		{ .fd = rt->ch->fd, .events = POLLIN },
		{ .fd = knock_fd, .events = POLLIN },
	};
	int ret;

	do
		ret = poll(pfd, knock_fd >= 0 ? 2 : 1, ms_left(deadline, 0));
	while (ret < 0 && errno == EINTR);
	if (ret == 0)
		return fail(rt, -ETIMEDOUT, "rdma_cm: no %s in time", what);
	if (ret > 0 && !(pfd[0].revents & POLLIN))
		return fail(rt, -ECONNABORTED, "rdma_cm: the peer started "
			    "over while we waited for %s", what);
	if (ret < 0 || rdma_get_cm_event(rt->ch, ev))
		return fail(rt, -errno, "rdma_get_cm_event: %s",
			    strerror(errno));
	return 0;
}

/* -errno for an event that ends a connection's set-up. */
static int cm_error(const struct rdma_cm_event *ev)
{
	switch (ev->event) {
	case RDMA_CM_EVENT_REJECTED:
		return -ECONNREFUSED;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
		return -EHOSTUNREACH;
	default:
		return -ECONNRESET;
	}
}

/* Waits until @deadline for the next connection event (a destination's:
 * its own connections only) and checks that it is @want. */
static int cm_wait(struct rdmat *rt, enum rdma_cm_event_type want,
		   int64_t deadline)
{
	struct rdma_cm_event *ev;
	int ret = cm_next(rt, deadline, -1, rdma_event_str(want), &ev);

	if (ret < 0)
		return ret;
	if (ev->event != want) {
		ret = cm_error(ev);
		fail(rt, ret, "rdma_cm: %s (status %d) while waiting for %s",
		     rdma_event_str(ev->event), ev->status,
		     rdma_event_str(want));
	}
	rdma_ack_cm_event(ev);
	return ret;
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
	if (!rt->pd)
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

/* Disconnects and frees the last queue pair. */
static void qp_drop_last(struct rdmat *rt)
{
	struct rdmat_qpx *q = &rt->qp[--rt->nr_qps];

	rdma_disconnect(q->id);
	if (q->id->qp)
		rdma_destroy_qp(q->id);
	rdma_destroy_id(q->id);
	ibv_destroy_cq(q->cq);
	pthread_mutex_destroy(&q->post_lock);
}

static void qps_drop(struct rdmat *rt)
{
	while (rt->nr_qps)
		qp_drop_last(rt);
}

/*
 * One event at a source accepting queue pairs; @pending: the last queue
 * pair is accepted, not yet established. A destination sets up one queue
 * pair at a time, so a new request means it gave the pending one up.
 */
static int accept_event(struct rdmat *rt, struct rdma_cm_event *ev,
			bool *dropped, bool *pending)
{
	struct rdma_conn_param param = conn_param();
	struct rdma_cm_id *last = rt->nr_qps ? rt->qp[rt->nr_qps - 1].id
					     : NULL;
	int ret = 0;

	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		/* The destination before's queue pairs go once a request
		 * shows the path usable again: their teardown is the
		 * connection manager's traffic, which a port that is not
		 * up yet must not carry (soft-RoCE's stops for good). */
		if (!*dropped)
			qps_drop(rt);
		*dropped = true;
		if (*pending)
			qp_drop_last(rt);
		*pending = false;
		ret = qp_create(rt, ev->id);
		if (!ret && rdma_accept(ev->id, &param))
			ret = fail(rt, -errno, "rdma_accept: %s",
				   strerror(errno));
		*pending = ret == 0;
		if (ret < 0 && (!rt->nr_qps ||
				rt->qp[rt->nr_qps - 1].id != ev->id)) {
			struct rdma_cm_id *id = ev->id; /* not ours yet */

			rdma_ack_cm_event(ev);
			rdma_destroy_id(id);
			return ret;
		}
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (*pending && ev->id == last)
			*pending = false;
		break;
	/* The end of the destination before's queue pairs. */
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		if (ev->id != last || !*pending)
			break;
		/* fall through */
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		/* A try the destination gave up: its next comes. */
		if (*pending && ev->id == last) {
			*pending = false;
			rdma_ack_cm_event(ev);
			qp_drop_last(rt);
			return 0;
		}
		break;
	default:
		ret = fail(rt, cm_error(ev), "rdma_cm: %s (status %d) while "
			   "accepting queue pairs",
			   rdma_event_str(ev->event), ev->status);
	}
	rdma_ack_cm_event(ev);
	return ret;
}

int rdmat_accept(struct rdmat *rt, unsigned int nr, int wait_ms,
		 int knock_fd)
{
	int64_t deadline = deadline_of(wait_ms);
	bool dropped = false, pending = false;

	/* A destination that comes back after a broken link (or a failed
	 * try) replaces the queue pairs of the one before. */
	while (!dropped || rt->nr_qps < nr || pending) {
		struct rdma_cm_event *ev;
		int ret = cm_next(rt, deadline, knock_fd,
				  "destination's queue pairs", &ev);

		if (ret == 0)
			ret = accept_event(rt, ev, &dropped, &pending);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* One queue pair of a destination: resolve, create, connect by
 * @deadline. On failure no queue pair is left of it. */
static int connect_one(struct rdmat *rt, const struct rdma_addrinfo *ai,
		       int64_t deadline)
{
	struct rdma_conn_param param = conn_param();
	unsigned int nr_qps = rt->nr_qps;
	struct rdma_cm_id *id;
	int ret;

	if (rdma_create_id(rt->ch, &id, NULL, RDMA_PS_TCP))
		return fail(rt, -errno, "rdma_create_id: %s", strerror(errno));
	if (rdma_resolve_addr(id, NULL, ai->ai_dst_addr,
			      step_ms(deadline)))
		ret = fail(rt, -errno, "rdma_resolve_addr: %s",
			   strerror(errno));
	else
		ret = cm_wait(rt, RDMA_CM_EVENT_ADDR_RESOLVED, deadline);
	if (!ret && rdma_resolve_route(id, step_ms(deadline)))
		ret = fail(rt, -errno, "rdma_resolve_route: %s",
			   strerror(errno));
	else if (!ret)
		ret = cm_wait(rt, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline);
	if (!ret && !rt->comp)
		ret = dev_open(rt, id);
	if (!ret)
		ret = qp_create(rt, id);
	if (!ret && rdma_connect(id, &param))
		ret = fail(rt, -errno, "rdma_connect: %s", strerror(errno));
	if (!ret)
		ret = cm_wait(rt, RDMA_CM_EVENT_ESTABLISHED, deadline);
	if (ret < 0) {
		if (rt->nr_qps > nr_qps)
			qp_drop_last(rt);
		else
			rdma_destroy_id(id);
	}
	return ret;
}

/* What a moment may cure: a port not ACTIVE yet after its link came up,
 * an address or route not resolvable yet, a server not accepting yet or
 * busy with a try we gave up. Not: no memory, a bad address, no room. */
static bool transient(int ret)
{
	return ret != -ENOMEM && ret != -EINVAL && ret != -ENOSPC &&
	       ret != -ETIMEDOUT;
}

int rdmat_connect(const char *addr, uint32_t rkey, uint64_t raddr,
		  int wait_ms, struct rdmat **out, char *err, size_t err_len)
{
	int64_t deadline = deadline_of(wait_ms);
	struct rdma_addrinfo *ai = NULL;
	struct rdmat *rt;
	int ret = endpoint_open(addr, false, &rt, &ai);

	if (!rt)
		return ret;
	rt->rkey = rkey;
	rt->raddr = raddr;
	while (!ret && rt->nr_qps < RDMAT_NR_QPS) {
		ret = connect_one(rt, ai, deadline);
		if (ret < 0 && transient(ret) &&
		    ms_left(deadline, 0) > RETRY_MS) {
			usleep(RETRY_MS * 1000);
			ret = 0;
		}
	}
	if (ai)
		rdma_freeaddrinfo(ai);
	return finish(rt, ret, out, err, err_len);
}

void rdmat_halt(struct rdmat *rt)
{
	struct ibv_qp_attr attr = { .qp_state = IBV_QPS_ERR };

	/* Local only: the queue pairs flush, the connection manager sends
	 * nothing. */
	for (unsigned int i = 0; i < rt->nr_qps; i++)
		if (rt->qp[i].id->qp)
			ibv_modify_qp(rt->qp[i].id->qp, &attr, IBV_QP_STATE);
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
