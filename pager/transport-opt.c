// SPDX-License-Identifier: MIT
/*
 * transport-opt.c - parses --transport and picks the default transport
 * (rdma when libibverbs lists a device, tcp otherwise).
 */
#include <gmem.h>

#include "opt.h"
#include "transport-opt.h"

enum transport_choice transport_opt_parse(const char *arg)
{
	static const char *const names[] = { "tcp", "rdma", NULL };

	return opt_choice("--transport", arg, names) ? TRANSPORT_RDMA :
						       TRANSPORT_TCP;
}

bool transport_opt_rdma(enum transport_choice c)
{
	if (c != TRANSPORT_DEFAULT)
		return c == TRANSPORT_RDMA;
	return gmem_rdma_devices() > 0;
}
