// SPDX-License-Identifier: MIT
/*
 * transport-opt.c - parses --transport and picks the default transport
 * (rdma when libibverbs lists a device, tcp otherwise).
 */
#include <stdio.h>
#include <string.h>

#include <gmem.h>

#include "transport-opt.h"

int transport_opt_parse(const char *prog, const char *arg,
			enum transport_choice *c)
{
	if (!strcmp(arg, "rdma"))
		*c = TRANSPORT_RDMA;
	else if (!strcmp(arg, "tcp"))
		*c = TRANSPORT_TCP;
	else {
		fprintf(stderr, "%s: --transport takes rdma or tcp, not '%s'\n",
			prog, arg);
		return -1;
	}
	return 0;
}

bool transport_opt_rdma(enum transport_choice c)
{
	if (c != TRANSPORT_DEFAULT)
		return c == TRANSPORT_RDMA;
	return gmem_rdma_devices() > 0;
}
