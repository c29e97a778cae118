/* SPDX-License-Identifier: MIT */
/*
 * vmm.h - libgmem-vmm.so, the preload library that hands a process's
 * mapping of a named shared memory backend to gmem-pager --uffd-handler:
 * preload.c finds the mapping, handoff.c registers and sends it.
 */
#ifndef GMEM_VMM_H
#define GMEM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One entry of GMEM_VMM_PATHS: a backend file and the socket of the
 * gmem-pager that serves it. */
struct vmm_backend {
	const char *path;
	const char *sock;
	bool handed;   /* a mapping of it went to gmem already */
};

/*
 * Registers [addr, addr + len), the process's MAP_SHARED mapping of @fd at
 * file offset @off, with a new userfaultfd and sends that fd, the mapping
 * and this process's pagemap fd to @b->sock; waits up to @timeout_ms for
 * the handler's "ok". On any failure it undoes the registration, so the
 * mapping is as it was, and says why in @err. Returns 0 or -1.
 */
int vmm_handoff(const struct vmm_backend *b, void *addr, size_t len,
		off_t off, int fd, int timeout_ms, char *err, size_t err_len);

#endif
