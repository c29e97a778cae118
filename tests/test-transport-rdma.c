// SPDX-License-Identifier: MIT
/*
 * test-transport-rdma.c - the RDMA transport's behaviour that needs no RDMA
 * device: a destination that asks a TCP-only server for RDMA is refused
 * with -EPROTONOSUPPORT; offering RDMA on a host without a device (or a
 * build without libibverbs) is a clear error and leaves the server on TCP.
 * The data path itself runs on soft-RoCE in tests/vm-rdma.sh; unknown
 * flags are refused before any connection.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

TestSuite(rdma, .init = require_uffd);

struct accept_arg {
	struct gmem_server *srv;
	int ret;
};

static void *accept_thread(void *arg)
{
	struct accept_arg *a = arg;

	a->ret = gmem_server_accept(a->srv, 2000);
	return NULL;
}

Test(rdma, tcp_only_server_refuses_an_rdma_destination, .timeout = 30)
{
	struct gmem_region *r = region_new(64, GMEM_PAGE_4K, GMEM_BACKING_MEMFD, 0);
	struct gmem_remote_params rp = { .flags = GMEM_REMOTE_RDMA,
					 .connect_ms = 5000 };
	struct accept_arg a = { 0 };
	struct gmem_remote *rm = NULL;
	pthread_t tid;
	char addr[32];

	cr_assert_eq(gmem_server_listen(r, "127.0.0.1:0", &a.srv), 0);
	cr_assert_str_eq(gmem_server_transport(a.srv), "tcp");
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", gmem_server_port(a.srv));
	cr_assert_eq(pthread_create(&tid, NULL, accept_thread, &a), 0);
	cr_assert_eq(gmem_remote_connect(addr, &rp, &rm), -EPROTONOSUPPORT);
	cr_assert_not_null(rm, "the failed end, to say why");
	cr_assert(strstr(gmem_remote_error(rm), "RDMA"), "%s",
		  gmem_remote_error(rm));
	gmem_remote_destroy(rm);
	pthread_join(tid, NULL);
	/* The server saw a destination leave, not a crash. */
	cr_assert_lt(a.ret, 0);
	gmem_server_destroy(a.srv);
	gmem_region_destroy(r);
}

Test(rdma, offer_without_a_device_is_a_clear_error, .timeout = 30)
{
	struct gmem_region *r = region_new(64, GMEM_PAGE_4K, GMEM_BACKING_MEMFD, 0);
	struct gmem_server *srv;
	int devs = gmem_rdma_devices(), ret;

	if (devs > 0)
		cr_skip_test("this host has %d RDMA device(s): tests/vm-rdma.sh covers it",
			     devs);
	cr_assert_eq(gmem_server_listen(r, "127.0.0.1:0", &srv), 0);
	ret = gmem_server_offer_rdma(srv, "127.0.0.1:0");
	cr_assert(ret == -ENODEV || ret == -EOPNOTSUPP, "%d", ret);
	cr_assert_eq(ret == -EOPNOTSUPP, devs == -EOPNOTSUPP);
	cr_assert(strstr(gmem_server_error(srv), "RDMA") ||
		  strstr(gmem_server_error(srv), "rdma"), "%s",
		  gmem_server_error(srv));
	cr_assert_str_eq(gmem_server_transport(srv), "tcp");
	cr_assert_eq(gmem_server_offer_rdma(srv, NULL), -EINVAL);
	gmem_server_destroy(srv);
	gmem_region_destroy(r);
}

Test(rdma, unknown_remote_flag_is_refused, .timeout = 30)
{
	struct gmem_remote_params rp = { .flags = GMEM_REMOTE_RDMA << 1 };
	struct gmem_remote *rm = NULL;

	/* An unknown flag next to it is refused before any connection. */
	cr_assert_eq(gmem_remote_connect("127.0.0.1:1", &rp, &rm), -EINVAL);
	cr_assert_null(rm);
}
