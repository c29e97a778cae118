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
#include <stdint.h>

struct uffd_handler_opts {
	const char *sock_path; /* Unix socket the VMM connects to */
	const char *file;      /* snapshot: page i at byte i * page size */
	const char *connect;   /* or a page server's HOST:PORT */
	int wait_ms;           /* for the VMM and the page server; -1 forever */
	const uint8_t *key;    /* the page server's pre-shared key, or NULL */
	size_t key_len;
	bool dirty_log;        /* --dirty-log: report writes on SIGUSR1 */
};

/* A listening AF_UNIX stream socket bound at @path (replacing a stale
 * one); returns the fd, or -errno after saying why on stderr. */
int listen_unix(const char *path);

/* Serves one VMM until it closes the socket (snapshot) or every page is
 * present and verified (page server). Returns the process's exit code. */
int uffd_handler_run(const struct uffd_handler_opts *o);

/* uffd-dirty.c. A signalfd for SIGUSR1, which it blocks in the calling
 * thread (call before any thread starts), or -errno. */
int uffd_dirty_signal_fd(void);
struct gmem_region;
/* Starts the region's dirty log; says why not on stderr. 0 or -errno. */
int uffd_dirty_start(struct gmem_region *r);
/* Takes one signal from @sig_fd and prints the pages written since the
 * previous report on stdout. 0 or -errno. */
int uffd_dirty_report(struct gmem_region *r, int sig_fd);

#endif
