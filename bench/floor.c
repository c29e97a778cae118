// SPDX-License-Identifier: MIT
/* floor.c - see floor.h. /dev/userfaultfd first, then the syscall. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "floor.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static int raw_uffd(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC), fd;

	fd = dev >= 0 ? ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK)
		      : (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (dev >= 0)
		close(dev);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

#define PAGE 4096UL

static void *floor_handler(void *arg)
{
	struct floor_map *m = arg;
	struct pollfd pfd = { .fd = m->uffd, .events = POLLIN };
	struct uffd_msg msg;

	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		if (poll(&pfd, 1, 10) <= 0 ||
		    read(m->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		uint64_t off = (msg.arg.pagefault.address -
				(uint64_t)(uintptr_t)m->base) &
			       ~(m->fa * PAGE - 1);
		struct uffdio_copy c = {
			.dst = (uint64_t)(uintptr_t)(m->base + off),
			.src = (uint64_t)(uintptr_t)(m->src + off % m->src_len),
			.len = m->fa * PAGE,
		};
		ioctl(m->uffd, UFFDIO_COPY, &c);
	}
	return NULL;
}

int floor_map(struct floor_map *m, size_t len, bool shmem, const uint8_t *src,
	      size_t src_len, unsigned int fa)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	void *p;

	*m = (struct floor_map){ .memfd = -1, .len = len, .src = src,
				 .src_len = src_len, .fa = fa };
	m->uffd = raw_uffd(shmem ? UFFD_FEATURE_MISSING_SHMEM : 0);
	if (m->uffd < 0)
		return m->uffd;
	if (shmem) {
		m->memfd = memfd_create("floor", MFD_CLOEXEC);
		if (m->memfd < 0 || ftruncate(m->memfd, len) < 0)
			goto fail;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 shmem ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, m->memfd, 0);
	if (p == MAP_FAILED)
		goto fail;
	m->base = p;
	reg.range.start = (uint64_t)(uintptr_t)p;
	reg.range.len = len;
	if (ioctl(m->uffd, UFFDIO_REGISTER, &reg) < 0)
		goto fail;
	errno = pthread_create(&m->tid, NULL, floor_handler, m);
	if (errno)
		goto fail;
	m->running = true;
	return 0;
fail:
	{
		int ret = -errno;

		floor_unmap(m);
		return ret;
	}
}

void floor_unmap(struct floor_map *m)
{
	if (m->running) {
		__atomic_store_n(&m->stop, true, __ATOMIC_RELEASE);
		pthread_join(m->tid, NULL);
	}
	if (m->base)
		munmap(m->base, m->len);
	if (m->memfd >= 0)
		close(m->memfd);
	if (m->uffd >= 0)
		close(m->uffd);
	*m = (struct floor_map){ .uffd = -1, .memfd = -1 };
}
