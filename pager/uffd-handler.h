/* SPDX-License-Identifier: MIT */
/*
 * uffd-handler.h - gmem-pager's external handler mode: serves the faults of
 * a VMM that hands over its userfaultfd and mapping list (Firecracker's
 * page-fault handler protocol).
 */
#ifndef GMEM_PAGER_UFFD_HANDLER_H
#define GMEM_PAGER_UFFD_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <gmem.h>

struct uffd_handler_opts {
	const char *sock_path; /* Unix socket the VMM connects to */
	const char *file;      /* snapshot: page i at byte i * page size */
	const char *connect;   /* or a page server's HOST:PORT */
	int wait_ms;           /* for the VMM and the page server; -1 forever */
	const uint8_t *key;    /* the page server's pre-shared key, or NULL */
	size_t key_len;
	bool dirty_log;        /* --dirty-log: report writes on SIGUSR1 */
};

/* uffd-accept.c. One VMM's hand-over. */
struct vmm_conn {
	int sock;
	int uffd;
	int pagemap; /* -1: the VMM sent none */
	struct gmem_uffd_mapping maps[GMEM_UFFD_MAX_MAPPINGS];
	uint32_t nr_maps;
};

/* A listening AF_UNIX stream socket bound at @path (replacing a stale
 * one); returns the fd, or -errno after saying why on stderr. */
int listen_unix(const char *path);

/* Listens at @sock_path (removed again before returning) for up to
 * @wait_ms (-1 forever), saying so on @log, accepts one VMM and reads its
 * mapping list into @c (sock, uffd and pagemap -1 beforehand; the caller
 * closes them). Returns 0 or -errno, having said why on stderr and to the
 * VMM. */
int uffd_vmm_accept(const char *sock_path, int wait_ms, FILE *log,
		    struct vmm_conn *c);
/* A region of the VMM's memory from @c (gmem_region_adopt_uffd(), and its
 * pagemap when sent). 0 or -errno, said to the VMM and on stderr. */
int uffd_vmm_adopt(struct vmm_conn *c, struct gmem_region **r);
/* A line for the VMM ("ok\n", "done\n"), which may be gone. */
void uffd_vmm_say(const struct vmm_conn *c, const char *line);

/* Serves one VMM until it closes the socket (snapshot) or every page is
 * present and verified (page server). Returns the process's exit code. */
int uffd_handler_run(const struct uffd_handler_opts *o);

/* uffd-dirty.c. A signalfd for SIGUSR1, which it blocks in the calling
 * thread (call before any thread starts), or -errno. */
int uffd_dirty_signal_fd(void);
/* Starts the region's dirty log; says why not on stderr. 0 or -errno. */
int uffd_dirty_start(struct gmem_region *r);
/* Takes one signal from @sig_fd and prints the pages written since the
 * previous report on stdout. 0 or -errno. */
int uffd_dirty_report(struct gmem_region *r, int sig_fd);

#endif
