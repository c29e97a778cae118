/* SPDX-License-Identifier: MIT */
/*
 * transport-opt.h - the --transport option both programs take: "rdma" or
 * "tcp"; without it, rdma when this host has an RDMA device, else tcp.
 */
#ifndef GMEM_PAGER_TRANSPORT_OPT_H
#define GMEM_PAGER_TRANSPORT_OPT_H

#include <stdbool.h>

enum transport_choice {
	TRANSPORT_DEFAULT = 0, /* no --transport given */
	TRANSPORT_TCP,
	TRANSPORT_RDMA,
};

/* Parses @arg into *@c: 0, or -1 (and a message) for an unknown name. */
int transport_opt_parse(const char *prog, const char *arg,
			enum transport_choice *c);
/* Whether to use RDMA: given, or by default when a device exists. */
bool transport_opt_rdma(enum transport_choice c);

#endif
