// SPDX-License-Identifier: MIT
/*
 * uffd-vmm.c - plays a VMM for tests/uffd-handler.sh: maps guest memory
 * (an anonymous mapping and a memfd one), registers both with its own
 * userfaultfd, sends the fd and a JSON mapping list to a page-fault handler
 * (gmem-pager --uffd-handler) and reads every page, comparing it with the
 * snapshot. Bad layouts send a malformed list and expect an error line.
 *   uffd-vmm SOCKET SNAPSHOT holes|full|bad-align|bad-overlap|bad-json
 * Exits 0 on the expected outcome, 1 otherwise, 77 without userfaultfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define PS 4096UL

struct layout {
	const char *name;
	uint64_t pages_a, off_a, pages_b, off_b; /* in pages */
	const char *bad; /* a list to send instead, NULL = the real one */
};

static const struct layout layouts[] = {
	{ "holes", 64, 0, 32, 96, NULL },
	{ "full", 64, 0, 64, 64, NULL },
	{ "bad-align", 64, 0, 64, 64, "[{\"base_host_virt_addr\": 4096, "
	  "\"size\": 4097, \"offset\": 0, \"page_size\": 4096}]" },
	{ "bad-overlap", 64, 0, 64, 64, "[{\"base_host_virt_addr\": 4096, "
	  "\"size\": 8192, \"offset\": 0, \"page_size\": 4096}, "
	  "{\"base_host_virt_addr\": 65536, \"size\": 8192, \"offset\": 4096, "
	  "\"page_size\": 4096}]" },
	{ "bad-json", 64, 0, 64, 64, "[{\"base_host_virt_addr\": 4096," },
};

static int open_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_MISSING_SHMEM };
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC), fd;

	fd = dev >= 0 ? ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC) :
			syscall(SYS_userfaultfd, O_CLOEXEC);
	if (dev >= 0)
		close(dev);
	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0)
		return -1;
	return fd;
}

static int uffd_register(int uffd, void *p, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg);
}

static int send_list(int sock, const char *text, int uffd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl = { 0 };
	struct iovec iov = { .iov_base = (void *)text,
			     .iov_len = strlen(text) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	return sendmsg(sock, &msg, 0) < 0 ? -1 : 0;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	return fd;
}

/* Reads every page of a mapping (each read faults to the handler) and
 * compares it with the snapshot at the mapping's offset. */
static uint64_t check_pages(const uint8_t *p, uint64_t nr, uint64_t pgoff,
			    int snap)
{
	uint8_t want[PS];
	uint64_t bad = 0;

	for (uint64_t i = 0; i < nr; i++) {
		if (pread(snap, want, PS, (pgoff + i) * PS) != (ssize_t)PS ||
		    memcmp(p + i * PS, want, PS))
			bad++;
	}
	return bad;
}

/* A bad list must come back as one "error: " line, then EOF. */
static int expect_error(int sock)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	char line[1024];
	ssize_t n;

	if (poll(&pfd, 1, 10000) <= 0)
		return 1;
	n = read(sock, line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	printf("uffd-vmm: handler said: %s", line);
	return strncmp(line, "error: ", 7) != 0;
}

int main(int argc, char **argv)
{
	const struct layout *l = NULL;
	uint8_t *a, *b;
	char list[512];
	int uffd, sock, snap, memfd;
	uint64_t bad;

	for (size_t i = 0; argc == 4 && i < sizeof(layouts) / sizeof(*l); i++)
		if (strcmp(argv[3], layouts[i].name) == 0)
			l = &layouts[i];
	if (!l) {
		fprintf(stderr, "usage: uffd-vmm SOCKET SNAPSHOT LAYOUT\n");
		return 2;
	}
	uffd = open_uffd();
	if (uffd < 0) {
		printf("uffd-vmm: SKIP: no userfaultfd: %s\n", strerror(errno));
		return 77;
	}
	memfd = memfd_create("uffd-vmm", MFD_CLOEXEC);
	a = mmap(NULL, l->pages_a * PS, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b = MAP_FAILED;
	if (memfd >= 0 && ftruncate(memfd, l->pages_b * PS) == 0)
		b = mmap(NULL, l->pages_b * PS, PROT_READ | PROT_WRITE,
			 MAP_SHARED, memfd, 0);
	snap = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (a == MAP_FAILED || b == MAP_FAILED || snap < 0 ||
	    uffd_register(uffd, a, l->pages_a * PS) < 0 ||
	    uffd_register(uffd, b, l->pages_b * PS) < 0) {
		perror("uffd-vmm: set-up");
		return 1;
	}
	snprintf(list, sizeof(list),
		 "[{\"base_host_virt_addr\": %lu, \"size\": %lu, \"offset\": "
		 "%lu, \"page_size\": %lu}, {\"base_host_virt_addr\": %lu, "
		 "\"size\": %lu, \"offset\": %lu, \"page_size_kib\": 4}]",
		 (unsigned long)(uintptr_t)a, l->pages_a * PS, l->off_a * PS,
		 PS, (unsigned long)(uintptr_t)b, l->pages_b * PS,
		 l->off_b * PS);
	sock = connect_unix(argv[1]);
	if (sock < 0 || send_list(sock, l->bad ? l->bad : list, uffd) < 0) {
		perror("uffd-vmm: handler socket");
		return 1;
	}
	if (l->bad)
		return expect_error(sock);
	bad = check_pages(a, l->pages_a, l->off_a, snap) +
	      check_pages(b, l->pages_b, l->off_b, snap);
	printf("uffd-vmm: %lu pages read, %lu differ from the snapshot\n",
	       (unsigned long)(l->pages_a + l->pages_b), (unsigned long)bad);
	return bad != 0;
}
