// SPDX-License-Identifier: MIT
/*
 * tcp.c - the TCP transport: one io_uring per endpoint driving several
 * connections. Receives land in registered buffers (READ_FIXED); sends use
 * IORING_OP_SEND with MSG_NOSIGNAL (a write(2) to a closed peer would raise
 * SIGPIPE, which a library must never do). Short transfers are resubmitted
 * here, so callers see whole buffers.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/pkt_sched.h>
#include <liburing.h>

#include "syscall.h"
#include "transport/transport.h"

/* Sockets of one endpoint: more than a session of the protocol opens. */
#define TCP_MAX_CONNS 16
#define RETRY_MS 20

/* Sends of one connection: the one in flight, then those waiting for it.
 * io_uring may retry two in-flight sends of one socket in either order
 * once the socket has room, so only one is ever handed to it. */
struct send_queue {
	struct transport_req *busy;
	struct transport_req *head, *tail;
};

struct tcp_ep {
	struct io_uring ring;
	bool fixed; /* receive buffer registered: READ_FIXED */
	unsigned int inflight;
	unsigned int nr_conns;
	int fds[TCP_MAX_CONNS];
	struct send_queue sq[TCP_MAX_CONNS];
	/* A queued send could not be handed to the ring: it would stay
	 * busy forever, so every poll() fails with this from then on. */
	int error;
};

/* Splits "host:port" or "[v6]:port" into its parts; host "" or "*" = any. */
static int addr_split(const char *addr, char *host, size_t host_len,
		      char *port, size_t port_len)
{
	const char *colon = strrchr(addr, ':');
	size_t n;

	if (!colon || !colon[1] || strlen(colon + 1) >= port_len)
		return -EINVAL;
	n = colon - addr;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= host_len)
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	if (!strcmp(host, "*"))
		host[0] = '\0';
	return 0;
}

static int addr_resolve(const char *addr, bool passive, struct addrinfo **ai)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = passive ? AI_PASSIVE : 0,
	};
	char host[256], port[16];
	int ret = addr_split(addr, host, sizeof(host), port, sizeof(port));

	if (ret < 0)
		return ret;
	ret = getaddrinfo(host[0] ? host : NULL, port, &hints, ai);
	if (ret == EAI_MEMORY)
		return -ENOMEM;
	return ret ? -EHOSTUNREACH : 0;
}

/*
 * A link that dies without a reset (a cable, a switch, a peer's host
 * gone) leaves a reader waiting forever: keepalive probes after IDLE_S
 * of silence, and a user timeout on unacknowledged sends (tcp(7)), end
 * such a connection within seconds, so post-copy recovery can start.
 */
#define KEEPALIVE_IDLE_S 2
#define KEEPALIVE_INTVL_S 1
#define KEEPALIVE_CNT 3
#define USER_TIMEOUT_MS 5000

static void sock_tune(int fd)
{
	int one = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTVL_S;
	int cnt = KEEPALIVE_CNT, user_timeout = USER_TIMEOUT_MS;

	/* Urgent requests are small: never hold them back (Nagle). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
		   sizeof(user_timeout));
}

static int tcp_listen(const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *ai;
	int fd, one = 1, ret = addr_resolve(addr, true, &ai);

	if (ret < 0)
		return ret;
	fd = sys_ret(socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ret = sys_ret(bind(fd, ai->ai_addr, ai->ai_addrlen));
	if (!ret)
		ret = sys_ret(listen(fd, 16));
	if (!ret)
		ret = sys_ret(getsockname(fd, (struct sockaddr *)&ss, &sl));
	if (ret < 0) {
		close(fd);
		goto out;
	}
	*port = ntohs(ss.ss_family == AF_INET6
			      ? ((struct sockaddr_in6 *)&ss)->sin6_port
			      : ((struct sockaddr_in *)&ss)->sin_port);
	ret = fd;
out:
	freeaddrinfo(ai);
	return ret;
}

static int wait_fd(int fd, short events, int wait_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int ret = sys_ret(poll(&pfd, 1, wait_ms));

	if (ret == 0)
		return -ETIMEDOUT;
	return ret < 0 ? ret : 0;
}

static int tcp_accept(int lfd, int wait_ms)
{
	int fd, ret = wait_fd(lfd, POLLIN, wait_ms);

	if (ret < 0)
		return ret;
	fd = sys_ret(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
	if (fd >= 0)
		sock_tune(fd);
	return fd;
}

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* One non-blocking connect attempt, waited for up to @wait_ms. */
static int connect_once(const struct addrinfo *ai, int wait_ms)
{
	socklen_t sl = sizeof(int);
	int fd, err = 0, ret;

	fd = sys_ret(socket(ai->ai_family,
			    SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (fd < 0)
		return fd;
	ret = sys_ret(connect(fd, ai->ai_addr, ai->ai_addrlen));
	if (ret == -EINPROGRESS) {
		ret = wait_fd(fd, POLLOUT, wait_ms);
		if (!ret)
			ret = sys_ret(getsockopt(fd, SOL_SOCKET, SO_ERROR,
						 &err, &sl));
		if (!ret)
			ret = -err;
	}
	if (!ret)
		ret = sys_ret(fcntl(fd, F_SETFL, 0));
	if (ret < 0) {
		close(fd);
		return ret;
	}
	sock_tune(fd);
	return fd;
}

/* Connects within @wait_ms, retrying while refused; -1: forever. */
static int tcp_connect(const char *addr, int wait_ms)
{
	int64_t deadline = wait_ms < 0 ? INT64_MAX : ms_now() + wait_ms;
	struct addrinfo *ai;
	int ret = addr_resolve(addr, false, &ai);

	if (ret < 0)
		return ret;
	for (;;) {
		int64_t left = deadline - ms_now();

		ret = connect_once(ai, wait_ms < 0 ? -1 : left > 0 ? (int)left : 0);
		if (ret != -ECONNREFUSED || left <= RETRY_MS)
			break;
		/* The server may not listen yet (it starts in parallel). */
		usleep(RETRY_MS * 1000);
	}
	freeaddrinfo(ai);
	return ret;
}

static int tcp_init(struct transport *t, unsigned int depth, void *buf,
		    size_t len)
{
	struct tcp_ep *ep = calloc(1, sizeof(*ep));
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	int ret;

	if (!ep)
		return -ENOMEM;
	ret = io_uring_queue_init(depth, &ep->ring, 0);
	if (ret < 0) {
		free(ep);
		return ret;
	}
	/* Pinning may be refused (RLIMIT_MEMLOCK): plain reads still work. */
	ep->fixed = buf && io_uring_register_buffers(&ep->ring, &iov, 1) == 0;
	t->ops = &transport_tcp_ops;
	t->priv = ep;
	return 0;
}

static int tcp_add_conn(struct transport *t, int fd)
{
	struct tcp_ep *ep = t->priv;

	if (ep->nr_conns == TCP_MAX_CONNS)
		return -ENOSPC;
	ep->fds[ep->nr_conns] = fd;
	return ep->nr_conns++;
}

static void prep_req(struct tcp_ep *ep, struct io_uring_sqe *sqe,
		     struct transport_req *q)
{
	int fd = ep->fds[q->conn];
	uint8_t *p = q->buf + q->done;
	unsigned int n = q->len - q->done;

	if (q->dir == TRANSPORT_SEND)
		io_uring_prep_send(sqe, fd, p, n, MSG_NOSIGNAL | MSG_WAITALL);
	else if (ep->fixed)
		io_uring_prep_read_fixed(sqe, fd, p, n, 0, 0);
	else
		io_uring_prep_recv(sqe, fd, p, n, 0);
	io_uring_sqe_set_data(sqe, q);
}

static int queue_req(struct tcp_ep *ep, struct transport_req *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ep->ring);

	if (!sqe) {
		int ret = io_uring_submit(&ep->ring);

		if (ret < 0)
			return ret;
		sqe = io_uring_get_sqe(&ep->ring);
		if (!sqe)
			return -EBUSY;
	}
	prep_req(ep, sqe, q);
	ep->inflight++;
	return 0;
}

/* Hands a send to the ring, or queues it behind the one in flight. */
static int queue_send(struct tcp_ep *ep, struct transport_req *q)
{
	struct send_queue *sq = &ep->sq[q->conn];

	if (!sq->busy) {
		sq->busy = q;
		return queue_req(ep, q);
	}
	q->next = NULL;
	if (sq->tail)
		sq->tail->next = q;
	else
		sq->head = q;
	sq->tail = q;
	return 0;
}

/* A send finished: the next one of its connection may go. */
static int send_next(struct tcp_ep *ep, unsigned int conn)
{
	struct send_queue *sq = &ep->sq[conn];
	struct transport_req *q = sq->head;

	sq->busy = q;
	if (!q)
		return 0;
	sq->head = q->next;
	if (!sq->head)
		sq->tail = NULL;
	return queue_req(ep, q);
}

static int tcp_queue(struct transport *t, struct transport_req **reqs,
		     unsigned int nr)
{
	struct tcp_ep *ep = t->priv;
	int ret;

	for (unsigned int i = 0; i < nr; i++) {
		struct transport_req *q = reqs[i];

		if (q->conn >= ep->nr_conns || !q->len)
			return -EINVAL;
		q->done = 0;
		q->res = 0;
		ret = q->dir == TRANSPORT_SEND ? queue_send(ep, q)
					       : queue_req(ep, q);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int tcp_submit(struct transport *t, struct transport_req **reqs,
		      unsigned int nr)
{
	struct tcp_ep *ep = t->priv;
	int ret = tcp_queue(t, reqs, nr);

	if (ret == 0)
		ret = io_uring_submit(&ep->ring);
	return ret < 0 ? ret : 0;
}

/* Accounts one completion; true when its request is finished. */
static bool complete_one(struct tcp_ep *ep, struct transport_req *q, int res,
			 bool *resubmit)
{
	if (res == -EAGAIN || res == -EINTR || (res > 0 &&
	    (q->done += res) < q->len && !q->partial)) {
		q->res = queue_req(ep, q);
		*resubmit = true;
		return q->res < 0;
	}
	if (res == 0 && (q->done < q->len || q->partial))
		res = -ECONNRESET; /* the peer closed the stream */
	q->res = res < 0 ? res : 0;
	if (q->dir == TRANSPORT_SEND) {
		int ret = send_next(ep, q->conn);

		if (ret < 0 && !ep->error)
			ep->error = ret;
		*resubmit |= ret == 0;
	}
	return true;
}

static int tcp_poll(struct transport *t, struct transport_req **done,
		    unsigned int max, int64_t wait_ns)
{
	struct tcp_ep *ep = t->priv;
	struct io_uring_cqe *cqe;
	bool resubmit = false;
	unsigned int n = 0;
	int ret;

	if (ep->error)
		return ep->error;
	if (wait_ns && io_uring_cq_ready(&ep->ring) == 0) {
		struct __kernel_timespec ts = {
			.tv_sec = wait_ns / 1000000000,
			.tv_nsec = wait_ns % 1000000000,
		};

		/* Queued requests go in with the wait: one system call. */
		ret = io_uring_submit_and_wait_timeout(&ep->ring, &cqe, 1,
						       wait_ns < 0 ? NULL : &ts,
						       NULL);
		if (ret == -ETIME || ret == -EINTR)
			return 0;
		if (ret < 0)
			return ret;
	}
	while (n < max && io_uring_peek_cqe(&ep->ring, &cqe) == 0) {
		struct transport_req *q = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&ep->ring, cqe);
		ep->inflight--;
		if (complete_one(ep, q, res, &resubmit))
			done[n++] = q;
	}
	if (ep->error)
		return ep->error;
	if (resubmit || io_uring_sq_ready(&ep->ring)) {
		ret = io_uring_submit(&ep->ring);
		if (ret < 0)
			return ret;
	}
	return n;
}

static int tcp_send_now(struct transport *t, unsigned int conn,
			const void *buf, size_t len)
{
	struct tcp_ep *ep = t->priv;
	const uint8_t *p = buf;
	int ret;

	if (conn >= ep->nr_conns)
		return -EINVAL;
	while (len) {
		ret = sys_ret(send(ep->fds[conn], p, len,
				   MSG_NOSIGNAL | MSG_DONTWAIT));
		if (ret == -EAGAIN)
			ret = wait_fd(ep->fds[conn], POLLOUT, 5000);
		if (ret == -EINTR || ret == 0)
			continue;
		if (ret < 0)
			return ret;
		p += ret;
		len -= ret;
	}
	return 0;
}

/*
 * TC_PRIO_INTERACTIVE: pfifo_fast (and prio's default map) queue it in band
 * 0, ahead of the push's bulk data in band 1, so an urgent answer does not
 * wait behind the push at a saturated NIC; per-flow disciplines (fq,
 * fq_codel) keep the flows apart anyway. 6 is the highest priority a socket
 * may set without CAP_NET_ADMIN (socket(7)).
 */
static void tcp_prioritize(struct transport *t, unsigned int conn)
{
	struct tcp_ep *ep = t->priv;
	int prio = TC_PRIO_INTERACTIVE;

	setsockopt(ep->fds[conn], SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio));
}

static void tcp_shutdown(struct transport *t, unsigned int conn)
{
	struct tcp_ep *ep = t->priv;

	if (conn < ep->nr_conns)
		shutdown(ep->fds[conn], SHUT_RDWR);
}

static void tcp_fini(struct transport *t)
{
	struct tcp_ep *ep = t->priv;
	struct transport_req *done[64];

	if (!ep)
		return;
	/* Outstanding receives target the caller's buffers: end them (the
	 * sockets shut down) and reap them before the buffers can go. */
	for (unsigned int i = 0; i < ep->nr_conns; i++)
		shutdown(ep->fds[i], SHUT_RDWR);
	for (int tries = 0; ep->inflight && tries < 100; tries++)
		if (tcp_poll(t, done, 64, 10000000) < 0)
			break;
	io_uring_queue_exit(&ep->ring);
	for (unsigned int i = 0; i < ep->nr_conns; i++)
		close(ep->fds[i]);
	free(ep);
	t->priv = NULL;
}

const struct transport_ops transport_tcp_ops = {
	.name = "tcp",
	.listen = tcp_listen,
	.accept = tcp_accept,
	.connect = tcp_connect,
	.init = tcp_init,
	.add_conn = tcp_add_conn,
	.submit = tcp_submit,
	.queue = tcp_queue,
	.poll = tcp_poll,
	.send_now = tcp_send_now,
	.prioritize = tcp_prioritize,
	.shutdown = tcp_shutdown,
	.fini = tcp_fini,
};
