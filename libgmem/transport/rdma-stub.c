// SPDX-License-Identifier: MIT
/*
 * rdma-stub.c - the RDMA transport of a build without libibverbs and
 * librdmacm: every entry point says so with -EOPNOTSUPP.
 */
#include <errno.h>
#include <stdio.h>

#include "transport/rdma.h"

#define NOT_BUILT "RDMA transport not built (configure found no libibverbs/librdmacm)"

int rdmat_devices(void)
{
	return -EOPNOTSUPP;
}

int rdmat_listen(const char *addr, void *base, size_t len, uint32_t *rkey,
		 uint64_t *raddr, struct rdmat **out, char *err, size_t err_len)
{
	snprintf(err, err_len, NOT_BUILT);
	return -EOPNOTSUPP;
}

int rdmat_accept(struct rdmat *rt, unsigned int nr, int wait_ms,
		 int knock_fd)
{
	return -EOPNOTSUPP;
}

int rdmat_connect(const char *addr, uint32_t rkey, uint64_t raddr,
		  int wait_ms, struct rdmat **out, char *err, size_t err_len)
{
	snprintf(err, err_len, NOT_BUILT);
	return -EOPNOTSUPP;
}

void rdmat_halt(struct rdmat *rt)
{
}

int rdmat_reg_local(struct rdmat *rt, void *buf, size_t len)
{
	return -EOPNOTSUPP;
}

int rdmat_read(struct rdmat *rt, enum rdmat_qp qp, void *local, uint64_t roff,
	       uint32_t len, uint64_t wr_id, bool signal)
{
	return -EOPNOTSUPP;
}

int rdmat_poll(struct rdmat *rt, enum rdmat_qp qp, struct rdmat_done *done,
	       unsigned int max)
{
	return -EOPNOTSUPP;
}

int rdmat_wait(struct rdmat *rt, int wait_ms)
{
	return -EOPNOTSUPP;
}

const char *rdmat_device(const struct rdmat *rt)
{
	return "";
}

const char *rdmat_error(const struct rdmat *rt)
{
	return NOT_BUILT;
}

void rdmat_destroy(struct rdmat *rt)
{
}
