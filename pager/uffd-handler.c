// SPDX-License-Identifier: MIT
/*
 * uffd-handler.c - gmem-pager --uffd-handler: a VMM connects to a Unix
 * socket and sends, in one message, a JSON list of its guest memory
 * mappings with its userfaultfd by SCM_RIGHTS (Firecracker's external
 * page-fault handler protocol). The handler adopts the userfaultfd
 * (gmem_region_adopt_uffd(), uffd-accept.c) and serves the VMM's faults from a snapshot
 * file or a remote page server. A second fd in that message, the VMM's
 * /proc/PID/pagemap (libgmem-vmm.so sends it), makes the dirty log of its
 * memory work (--dirty-log). A bad list gets one "error: ..." line back
 * on the socket and on stderr; nothing is installed. Once faults are
 * served the VMM reads "ok", and "done" when every page is there and it
 * may let its userfaultfd go (Firecracker ignores both lines).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmem.h>
#include <json-c/json.h>

#include "uffd-handler.h"

/* The remote end must serve an image of exactly this geometry. */
static int remote_source(const struct uffd_handler_opts *o,
			 struct gmem_region *r, struct gmem_remote **rm,
			 struct gmem_source **src)
{
	struct gmem_remote_params p = {
		.connect_ms = o->wait_ms, .key = o->key, .key_len = o->key_len,
	};
	int64_t ret = gmem_remote_connect(o->connect, &p, rm);

	if (ret < 0) {
		fprintf(stderr, "gmem-pager: connect %s: %s\n", o->connect,
			*rm ? gmem_remote_error(*rm) : strerror(-ret));
		return ret;
	}
	if (gmem_remote_page_size(*rm) != gmem_region_page_size(r) ||
	    gmem_remote_nr_pages(*rm) != gmem_region_nr_pages(r)) {
		fprintf(stderr, "gmem-pager: %s serves %llu pages of %u bytes; "
			"the VMM's mappings span %llu pages of %u bytes\n",
			o->connect,
			(unsigned long long)gmem_remote_nr_pages(*rm),
			gmem_remote_page_size(*rm),
			(unsigned long long)gmem_region_nr_pages(r),
			gmem_region_page_size(r));
		return -EINVAL;
	}
	ret = gmem_remote_precopy(*rm, r, o->wait_ms);
	if (ret >= 0)
		ret = gmem_remote_source(*rm, src);
	if (ret < 0)
		fprintf(stderr, "gmem-pager: %s: %s %s\n", o->connect,
			strerror(-ret), gmem_remote_error(*rm));
	return ret;
}

static int file_source(const char *path, struct gmem_source **src)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "gmem-pager: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	ret = gmem_source_file(fd, 0, src);
	close(fd);
	if (ret < 0)
		fprintf(stderr, "gmem-pager: %s: %s\n", path, strerror(-ret));
	return ret;
}

/* Until the VMM closes its socket; each SIGUSR1 on @sig_fd (>= 0 with
 * --dirty-log) prints a dirty log epoch. */
static int serve_snapshot(struct vmm_conn *c, struct gmem_region *r,
			  int sig_fd)
{
	struct pollfd pfd[2] = { { .fd = c->sock, .events = POLLIN },
				 { .fd = sig_fd, .events = POLLIN } };
	char byte;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[1].revents && uffd_dirty_report(r, sig_fd) < 0)
			return -EIO;
		if (pfd[0].revents && read(c->sock, &byte, 1) <= 0)
			return 0;
	}
}

/* Serving ends when the VMM closes its socket or, with a page server,
 * once every page is present and verified. */
static int serve_vmm(const struct uffd_handler_opts *o, struct vmm_conn *c,
		     struct gmem_region *r, struct gmem_remote *rm, int sig_fd)
{
	struct gmem_fault_stats st;
	int ret = 0;

	printf("gmem-pager: serving %u mappings, %llu pages of %u bytes\n",
	       c->nr_maps, (unsigned long long)gmem_region_nr_pages(r),
	       gmem_region_page_size(r));
	fflush(stdout);
	uffd_vmm_say(c, "ok\n");
	if (rm) {
		ret = gmem_remote_wait(rm, -1);
		if (ret < 0)
			fprintf(stderr, "gmem-pager: %s: %s %s\n", o->connect,
				strerror(-ret), gmem_remote_error(rm));
		else
			uffd_vmm_say(c, "done\n");
	} else {
		ret = serve_snapshot(c, r, sig_fd);
	}
	/* Joining the handlers makes the counters final. */
	gmem_region_detach(r);
	gmem_region_fault_stats(r, &st);
	printf("gmem-pager: VMM done: faults %llu pages installed %llu "
	       "errors %llu%s\n", (unsigned long long)st.faults,
	       (unsigned long long)st.pages_installed,
	       (unsigned long long)st.errors,
	       rm && !ret ? ", digests equal" : "");
	return ret;
}

int uffd_handler_run(const struct uffd_handler_opts *o)
{
	struct vmm_conn c = { .sock = -1, .uffd = -1, .pagemap = -1 };
	struct gmem_region *r = NULL;
	struct gmem_remote *rm = NULL;
	struct gmem_source *src = NULL;
	int sig_fd = -1, ret = 0;

	if (o->dirty_log)
		ret = sig_fd = uffd_dirty_signal_fd();
	if (ret >= 0)
		ret = uffd_vmm_accept(o->sock_path, o->wait_ms, stdout,
				      &c);
	if (ret == 0)
		ret = uffd_vmm_adopt(&c, &r);
	if (ret == 0)
		ret = o->file ? file_source(o->file, &src)
			      : remote_source(o, r, &rm, &src);
	if (ret == 0) {
		ret = gmem_region_attach(r, src, NULL);
		if (ret < 0)
			fprintf(stderr, "gmem-pager: attach: %s\n",
				strerror(-ret));
	}
	if (ret == 0 && o->dirty_log)
		ret = uffd_dirty_start(r);
	if (ret == 0)
		ret = serve_vmm(o, &c, r, rm, sig_fd);
	gmem_source_destroy(src);
	gmem_remote_destroy(rm);
	gmem_region_destroy(r);
	if (c.uffd >= 0)
		close(c.uffd);
	if (c.pagemap >= 0)
		close(c.pagemap);
	if (sig_fd >= 0)
		close(sig_fd);
	if (c.sock >= 0)
		close(c.sock);
	return ret < 0 ? 1 : 0;
}
