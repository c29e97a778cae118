// SPDX-License-Identifier: MIT
/*
 * test-tcp.c - the io_uring TCP transport, compiled in, with this program's
 * own io_uring_submit() (to fail once) and clock_gettime() (to make hours
 * pass): a send that cannot be handed to the ring fails the endpoint
 * instead of stalling it, and connect with -1 retries for longer than an
 * hour.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>

#include "transport/transport.h"

static bool submit_fails_once;
static bool hours_pass;

int io_uring_submit(struct io_uring *ring)
{
	static int (*real)(struct io_uring *);

	if (submit_fails_once) {
		submit_fails_once = false;
		return -EBUSY;
	}
	if (!real)
		real = (int (*)(struct io_uring *))dlsym(RTLD_NEXT,
							 "io_uring_submit");
	return real(ring);
}

/* While @hours_pass, each look at the monotonic clock is two hours on. */
int clock_gettime(clockid_t clk, struct timespec *ts)
{
	static time_t offset;
	int ret = syscall(SYS_clock_gettime, clk, ts);

	if (ret == 0 && clk == CLOCK_MONOTONIC) {
		if (hours_pass)
			offset += 7200;
		ts->tv_sec += offset;
	}
	return ret;
}

Test(tcp, send_that_cannot_be_queued_fails_the_endpoint, .timeout = 20)
{
	struct transport t = {};
	uint8_t a[64] = "a", b[64] = "b", in[2][64];
	struct transport_req sends[2] = {
		{ .conn = 0, .dir = TRANSPORT_SEND, .buf = a, .len = sizeof(a) },
		{ .conn = 0, .dir = TRANSPORT_SEND, .buf = b, .len = sizeof(b) },
	};
	struct transport_req recvs[2] = {
		{ .conn = 0, .dir = TRANSPORT_RECV, .buf = in[0], .len = 64 },
		{ .conn = 0, .dir = TRANSPORT_RECV, .buf = in[1], .len = 64 },
	};
	struct transport_req *s[2] = { &sends[0], &sends[1] };
	struct transport_req *r[2] = { &recvs[0], &recvs[1] };
	struct transport_req *done[4];
	int sv[2], ret = 0;
	bool second_done = false;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* Two submission slots: the receives below fill them. */
	cr_assert_eq(transport_tcp_ops.init(&t, 2, NULL, 0), 0);
	cr_assert_eq(t.ops->add_conn(&t, sv[0]), 0);
	/* The first send goes to the ring, the second waits behind it. */
	cr_assert_eq(t.ops->submit(&t, s, 2), 0);
	usleep(100000);
	cr_assert_eq(t.ops->queue(&t, r, 2), 0);
	/* The first send's completion hands the second to a full ring,
	 * whose submit fails. */
	submit_fails_once = true;
	for (int i = 0; i < 10 && ret >= 0 && !second_done; i++) {
		ret = t.ops->poll(&t, done, 4, i ? 50000000 : 0);
		for (int k = 0; k < ret; k++)
			second_done |= done[k] == &sends[1];
	}
	cr_expect(ret < 0 || second_done,
		  "the second send neither went nor failed: the connection stalls");
	t.ops->fini(&t);
	close(sv[1]);
}

struct listener {
	int fd;
	struct sockaddr_in sa;
};

static void *listen_later(void *arg)
{
	struct listener *l = arg;

	usleep(300000);
	bind(l->fd, (struct sockaddr *)&l->sa, sizeof(l->sa));
	listen(l->fd, 1);
	return NULL;
}

Test(tcp, connect_forever_outlasts_an_hour, .timeout = 20)
{
	struct listener l = { .sa = { .sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) } };
	socklen_t len = sizeof(l.sa);
	pthread_t th;
	char addr[32];
	int fd, one = 1;

	/* A free port, refused until the listener binds it. */
	l.fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(l.fd, 0);
	setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(l.fd, (struct sockaddr *)&l.sa, sizeof(l.sa)), 0);
	cr_assert_eq(getsockname(l.fd, (struct sockaddr *)&l.sa, &len), 0);
	close(l.fd);
	l.fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(l.sa.sin_port));
	pthread_create(&th, NULL, listen_later, &l);
	hours_pass = true;
	fd = transport_tcp_ops.connect(addr, -1);
	hours_pass = false;
	pthread_join(th, NULL);
	cr_expect_geq(fd, 0, "gave up: %s", strerror(-fd));
	if (fd >= 0)
		close(fd);
	close(l.fd);
}
