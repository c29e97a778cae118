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

/* Parses @arg; another name is a usage error (opt.h: exit 2). */
enum transport_choice transport_opt_parse(const char *arg);
/* Whether to use RDMA: given, or by default when a device exists. */
bool transport_opt_rdma(enum transport_choice c);

#endif
