// SPDX-License-Identifier: MIT
/*
 * handoff.c - registers a mapping of this process with a userfaultfd of its
 * own and hands that fd, the mapping (as Firecracker's page-fault handler
 * protocol lists it, in JSON) and /proc/self/pagemap to gmem-pager
 * --uffd-handler over a Unix socket. The userfaultfd asks for what gmem's
 * dirty log needs where the kernel has it: write-protect on shmem and
 * unpopulated pages, asynchronous (WP_ASYNC, Linux 6.7) when possible.
 *
 * This process keeps its own copy of the userfaultfd until gmem says
 * "done" (every page there). If gmem goes away first, the pages still
 * missing are poisoned (UFFDIO_POISON, Linux 6.6): a touch raises SIGBUS,
 * so the process neither reads zeros that were never the guest's nor waits
 * for ever on a page no one will send.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../compat.h"
#include "vmm.h"

/* Faults on missing pages of shmem and hugetlbfs, and what the dirty log
 * of gmem needs; UFFDIO_API refuses a feature the kernel lacks, so only
 * those it has are asked. */
#define WANT_FEATURES (UFFD_FEATURE_MISSING_SHMEM | \
		       UFFD_FEATURE_MISSING_HUGETLBFS | \
		       UFFD_FEATURE_PAGEFAULT_FLAG_WP | \
		       UFFD_FEATURE_WP_HUGETLBFS_SHMEM | \
		       UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_ASYNC | \
		       UFFD_FEATURE_POISON)

struct conn {
	int uffd;
	int sock;
	const struct vmm_backend *b;
	uintptr_t addr;   /* the registered mapping */
	uint64_t len, ps; /* bytes; its page size */
};

#define fail(...) (snprintf(err, err_len, __VA_ARGS__), -1)

/* /dev/userfaultfd first (no sysctl or capability, Linux 5.11), then the
 * syscall; never UFFD_USER_MODE_ONLY, under which the kernel's own
 * accesses to the memory (read(2) into it) would fail instead of fault. */
static int uffd_new(void)
{
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC), fd = -1;

	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
		close(dev);
	}
	return fd >= 0 ? fd : (int)syscall(SYS_userfaultfd, O_CLOEXEC);
}

static int uffd_open(uint64_t need, char *err, size_t err_len)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = uffd_new();

	/* A first fd asks for nothing: the kernel answers with all it has. */
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0) {
		if (fd >= 0)
			close(fd);
		return fail("no userfaultfd: %s", strerror(errno));
	}
	close(fd);
	if (!(api.features & need))
		return fail("this kernel has no userfaultfd on this memory");
	api = (struct uffdio_api){ .api = UFFD_API,
				   .features = api.features & WANT_FEATURES };
	fd = uffd_new();
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0) {
		if (fd >= 0)
			close(fd);
		return fail("userfaultfd: %s", strerror(errno));
	}
	return fd;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The list and, by SCM_RIGHTS, the userfaultfd and (if open) pagemap. */
static int send_list(int sock, const char *text, int uffd, int pagemap)
{
	int fds[2] = { uffd, pagemap }, nfds = pagemap >= 0 ? 2 : 1;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(fds))];
	} ctl;
	struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *c;

	memset(&ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* One line from gmem, without its newline; 0, or -1 on EOF, error or
 * timeout (@timeout_ms, -1 none). */
static int read_line(int sock, char *line, size_t len, int timeout_ms)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	size_t n = 0;

	while (n + 1 < len) {
		int r = poll(&pfd, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || read(sock, line + n, 1) != 1)
			break;
		if (line[n] == '\n') {
			line[n] = '\0';
			return 0;
		}
		n++;
	}
	line[n] = '\0';
	return -1;
}

/* Poisons every page of the mapping still missing; a page mapped already
 * answers EEXIST and keeps its bytes. Returns 0, or -1 (errno) where the
 * kernel cannot (no UFFDIO_POISON before Linux 6.6). */
static int poison_missing(const struct conn *c)
{
	uint64_t off = 0;
	int stuck = 0;

	while (off < c->len) {
		struct uffdio_poison po = {
			.range = { .start = c->addr + off, .len = c->len - off },
		};

		if (ioctl(c->uffd, UFFDIO_POISON, &po) == 0)
			return 0;
		if (errno != EEXIST && errno != EAGAIN)
			return -1;
		/* EAGAIN: the mapping is changing; a bounded retry. */
		if (errno == EAGAIN && po.updated <= 0 && ++stuck > 1000)
			return -1;
		if (po.updated > 0)
			off += po.updated;
		if (errno == EEXIST)
			off += c->ps;
	}
	return 0;
}

/* After "ok": "done" lets the userfaultfd go. Anything else means gmem
 * went away while serving: what it had not sent is poisoned, and the fd
 * stays open so that the kernel keeps the registration (closed, a page
 * whose marker was lost would read as a hole: zeros). */
static void *watch(void *arg)
{
	struct conn *c = arg;
	char line[256];

	while (read_line(c->sock, line, sizeof(line), -1) == 0 &&
	       strcmp(line, "done") != 0)
		;
	if (strcmp(line, "done") == 0) {
		close(c->uffd);
	} else {
		/* Said first: a thread waiting on one of these pages takes
		 * its SIGBUS as soon as the page is poisoned. */
		dprintf(STDERR_FILENO, "libgmem-vmm: %s: gmem went away while "
			"serving; poisoning the pages it had not sent (a touch "
			"raises SIGBUS)\n", c->b->path);
		if (poison_missing(c) < 0)
			dprintf(STDERR_FILENO, "libgmem-vmm: %s: this kernel "
				"cannot poison them (%s): faults on them wait\n",
				c->b->path, strerror(errno));
	}
	close(c->sock);
	free(c);
	return NULL;
}

/* A thread that takes none of the process's signals. */
static int watch_start(struct conn *c)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int ret;

	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&t, &attr, watch, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return ret;
}

/* Sends the list and waits for "ok" (or gmem's "error: ..."). */
static int hand(struct conn *c, const char *list, int timeout_ms, char *err,
		size_t err_len)
{
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), ret;
	char line[256];

	c->sock = connect_unix(c->b->sock);
	if (c->sock < 0)
		ret = fail("gmem socket: %s", strerror(errno));
	else if (send_list(c->sock, list, c->uffd, pagemap) < 0)
		ret = fail("gmem socket: %s", strerror(errno));
	else if (read_line(c->sock, line, sizeof(line), timeout_ms) < 0)
		ret = fail("gmem-pager did not answer (closed, or no \"ok\" "
			   "in %d ms)", timeout_ms);
	else if (strcmp(line, "ok") != 0)
		ret = fail("gmem-pager said: %s", line);
	else
		ret = 0;
	if (pagemap >= 0)
		close(pagemap);
	return ret;
}

int vmm_handoff(const struct vmm_backend *b, void *addr, size_t len,
		off_t off, int fd, int timeout_ms, char *err, size_t err_len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	uint64_t ps = 4096, need = UFFD_FEATURE_MISSING_SHMEM;
	struct conn *c;
	struct statfs sfs;
	char list[256];

	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC) {
		ps = sfs.f_bsize;
		need = UFFD_FEATURE_MISSING_HUGETLBFS;
	}
	if ((uintptr_t)addr % ps || len % ps || off % ps || off < 0)
		return fail("mapping not aligned to its %llu-byte pages",
			    (unsigned long long)ps);
	c = calloc(1, sizeof(*c));
	if (!c)
		return fail("out of memory");
	c->b = b;
	c->addr = (uintptr_t)addr;
	c->len = len;
	c->ps = ps;
	c->uffd = uffd_open(need, err, err_len);
	if (c->uffd < 0) {
		free(c);
		return -1;
	}
	if (ioctl(c->uffd, UFFDIO_REGISTER, &reg) < 0) {
		snprintf(err, err_len, "UFFDIO_REGISTER: %s", strerror(errno));
		close(c->uffd);
		free(c);
		return -1;
	}
	snprintf(list, sizeof(list),
		 "[{\"base_host_virt_addr\": %llu, \"size\": %llu, "
		 "\"offset\": %llu, \"page_size\": %llu}]",
		 (unsigned long long)(uintptr_t)addr, (unsigned long long)len,
		 (unsigned long long)off, (unsigned long long)ps);
	if (hand(c, list, timeout_ms, err, err_len) == 0) {
		/* Without the watcher both fds stay open for the process's
		 * life: faults are served all the same. */
		watch_start(c);
		return 0;
	}
	ioctl(c->uffd, UFFDIO_UNREGISTER, &reg.range);
	close(c->uffd);
	if (c->sock >= 0)
		close(c->sock);
	free(c);
	return -1;
}
