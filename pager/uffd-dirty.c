// SPDX-License-Identifier: MIT
/*
 * uffd-dirty.c - gmem-pager --uffd-handler --dirty-log: logs the VMM's
 * writes to the memory it serves (WP_ASYNC through the pagemap fd the VMM
 * sent with its userfaultfd) and, on each SIGUSR1, prints the pages written
 * since the previous report: one epoch per line.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <gmem.h>

#include "uffd-handler.h"

/* Runs printed per report; the pages of the rest are counted. */
#define MAX_RUNS 4096

int uffd_dirty_signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	/* Blocked before any handler thread starts, so that every thread
	 * inherits the mask and the signal only ever reaches the fd. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (fd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "gmem-pager: signalfd: %s\n", strerror(errno));
		return -errno;
	}
	return fd;
}

int uffd_dirty_start(struct gmem_region *r)
{
	int ret = gmem_dirty_start(r, NULL);

	if (ret < 0) {
		fprintf(stderr, "gmem-pager: dirty log: %s%s\n", strerror(-ret),
			ret == -EOPNOTSUPP ?
				" (the VMM sent no pagemap fd, or its "
				"userfaultfd lacks WP_ASYNC)" : "");
		return ret;
	}
	printf("gmem-pager: dirty log on (%s)\n",
	       gmem_dirty_backend_name(gmem_dirty_backend(r)));
	fflush(stdout);
	return 0;
}

/* "gmem-pager: dirty epoch E: N pages: 3,10-11" (page indexes). */
int uffd_dirty_report(struct gmem_region *r, int sig_fd)
{
	struct signalfd_siginfo si;
	struct gmem_dirty_run *runs = calloc(MAX_RUNS, sizeof(*runs));
	struct gmem_dirty_result res = { .runs = runs, .max_runs = MAX_RUNS };
	int64_t n;

	if (read(sig_fd, &si, sizeof(si)) != sizeof(si) || !runs) {
		free(runs);
		return -EIO;
	}
	n = gmem_dirty_collect(r, &res);
	if (n < 0) {
		fprintf(stderr, "gmem-pager: dirty log: %s\n", strerror(-n));
		free(runs);
		return (int)n;
	}
	printf("gmem-pager: dirty epoch %llu: %lld pages:",
	       (unsigned long long)res.epoch, (long long)n);
	for (uint64_t i = 0; i < res.nr_runs; i++) {
		uint64_t a = runs[i].pgoff, b = a + runs[i].nr_pages - 1;

		printf("%s%llu", i ? "," : " ", (unsigned long long)a);
		if (b != a)
			printf("-%llu", (unsigned long long)b);
	}
	printf("%s\n", res.flags & GMEM_DIRTY_RUNS_FULL ?
			       " (more in the next epoch)" : "");
	fflush(stdout);
	free(runs);
	return 0;
}
