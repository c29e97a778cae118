// SPDX-License-Identifier: MIT
/*
 * uffd.c - the userfaultfd boundary: opening and API handshake, range
 * registration and the resolve ioctls (UFFDIO_COPY, UFFDIO_CONTINUE,
 * UFFDIO_WAKE, UFFDIO_WRITEPROTECT). Documentation/admin-guide/mm/
 * userfaultfd.rst is the reference for every call here.
 */
#include <fcntl.h>
#include <string.h>

#include "compat.h"
#include "internal.h"
#include "syscall.h"

/* Opens a raw userfaultfd: /dev/userfaultfd first (no sysctl or capability
 * needed, Linux 5.11+), then the syscall. */
static int uffd_open_raw(bool *dev)
{
	int fd, ret;

	fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		ret = sys_ioctl(fd, USERFAULTFD_IOC_NEW,
				(void *)(long)(O_CLOEXEC | O_NONBLOCK));
		close(fd);
		if (ret >= 0) {
			*dev = true;
			return ret;
		}
	}
	*dev = false;
	return sys_userfaultfd(O_CLOEXEC | O_NONBLOCK);
}

/* The UFFDIO_API handshake; @features in, enabled features out. */
static int uffd_api(int fd, uint64_t *features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = *features };
	int ret = sys_ioctl(fd, UFFDIO_API, &api);

	if (ret < 0)
		return ret;
	*features = api.features;
	return 0;
}

int uffd_probe_features(uint64_t *features)
{
	bool dev;
	int fd = uffd_open_raw(&dev);
	int ret;

	if (fd < 0)
		return fd;
	/* Features 0 asks for nothing; the kernel answers with all it has. */
	*features = 0;
	ret = uffd_api(fd, features);
	close(fd);
	if (ret == 0 && dev)
		*features |= 1ULL << 63; /* marks "opened by /dev/userfaultfd" */
	return ret;
}

int uffd_open(uint64_t want_features, uint64_t *got_features)
{
	uint64_t feat = want_features;
	bool dev;
	int fd = uffd_open_raw(&dev);
	int ret;

	if (fd < 0)
		return fd;
	ret = uffd_api(fd, &feat);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	/* UFFDIO_API answers with every feature the kernel has, not the ones
	 * enabled: on success those are exactly the ones asked for. */
	*got_features = want_features;
	return fd;
}

/* The owner's ranges of @r, for (un)registration: one, or each mapping of
 * an external region. */
static uint32_t reg_range(const struct gmem_region *r, uint32_t i,
			  struct uffdio_range *range)
{
	if (!r->maps) {
		*range = (struct uffdio_range){ .start = r->uva, .len = r->size };
		return 1;
	}
	*range = (struct uffdio_range){
		.start = r->maps[i].uva,
		.len = r->maps[i].nr_pages << r->page_shift,
	};
	return r->nr_maps;
}

int uffd_register(struct gmem_region *r, uint64_t mode)
{
	struct uffdio_register reg = { .mode = mode };
	uint32_t n = 1;
	int ret = 0;

	for (uint32_t i = 0; ret == 0 && i < n; i++) {
		n = reg_range(r, i, &reg.range);
		ret = sys_ioctl(r->uffd, UFFDIO_REGISTER, &reg);
	}
	if (ret == 0)
		r->reg_mode = mode;
	return ret;
}

int uffd_unregister(struct gmem_region *r)
{
	struct uffdio_range range;
	uint32_t n = 1;
	int ret = 0;

	for (uint32_t i = 0; ret == 0 && i < n; i++) {
		n = reg_range(r, i, &range);
		ret = sys_ioctl(r->uffd, UFFDIO_UNREGISTER, &range);
	}
	if (ret == 0)
		r->reg_mode = 0;
	return ret;
}

int uffd_wake(struct gmem_region *r, uint64_t off, uint64_t len)
{
	while (len) {
		uint64_t n = len;
		struct uffdio_range range = { .start = region_uva(r, off, &n),
					      .len = n };
		int ret = n ? sys_ioctl(r->uffd, UFFDIO_WAKE, &range) : -EFAULT;

		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* One UFFDIO_CONTINUE or UFFDIO_COPY, up to the end of the owner's
 * mapping that holds @off; returns bytes done (>= 0) or -errno. Both report
 * partial progress in their result field on -EAGAIN/-EEXIST. */
static int64_t install_once(struct gmem_region *r, uint64_t off, uint64_t len,
			    const uint8_t *src)
{
	uint64_t uva = region_uva(r, off, &len);
	int ret;

	if (!len)
		return -EFAULT;
	if (r->alias) {
		struct uffdio_continue cont = {
			.range = { .start = uva, .len = len },
		};

		ret = sys_ioctl(r->uffd, UFFDIO_CONTINUE, &cont);
		if (ret == 0)
			return len;
		return cont.mapped > 0 ? cont.mapped : ret;
	} else {
		struct uffdio_copy copy = {
			.dst = uva,
			.src = (uint64_t)(uintptr_t)src,
			.len = len,
		};

		ret = sys_ioctl(r->uffd, UFFDIO_COPY, &copy);
		if (ret == 0)
			return len;
		return copy.copy > 0 ? copy.copy : ret;
	}
}

int uffd_install(struct gmem_region *r, uint64_t off, uint64_t len,
		 const void *src, uint64_t *eexist)
{
	uint64_t done = 0;

	while (done < len) {
		int64_t n = install_once(r, off + done, len - done,
					 src ? (const uint8_t *)src + done : NULL);

		if (n > 0) {
			done += n;
		} else if (n == -EAGAIN) {
			continue; /* the mm is changing (fork, mremap): retry */
		} else if (n == -EEXIST) {
			/* Already mapped (touched before registration, or a
			 * page cache page of an adopted fd): skip that page,
			 * and wake whoever waits on it. */
			(*eexist)++;
			uffd_wake(r, off + done, r->page_size);
			done += r->page_size;
		} else {
			return (int)n;
		}
	}
	return 0;
}

/* Split at the owner's mapping ends; image pages no mapping holds are
 * skipped (they never fault). */
int uffd_writeprotect(struct gmem_region *r, uint64_t off, uint64_t len,
		      bool protect)
{
	struct uffdio_writeprotect wp = {
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	while (len) {
		uint64_t n = len;
		int ret;

		wp.range.start = region_uva(r, off, &n);
		wp.range.len = n;
		if (!n) {
			off += r->page_size;
			len -= r->page_size;
			continue;
		}
		ret = sys_ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp);
		if (ret < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* Split at the owner's mapping ends as above. A page mapped meanwhile
 * answers -EEXIST with the bytes done before it in @updated: that page is
 * skipped, since it holds its bytes. Waiters are woken (no DONTWAKE), to
 * find the marker and take their SIGBUS. */
int64_t uffd_poison(struct gmem_region *r, uint64_t off, uint64_t len)
{
	int64_t done = 0;

	while (len) {
		uint64_t n = len;
		struct uffdio_poison po = { .range.start = region_uva(r, off, &n) };
		int ret;

		if (!n) {
			off += r->page_size;
			len -= r->page_size;
			continue;
		}
		po.range.len = n;
		ret = sys_ioctl(r->uffd, UFFDIO_POISON, &po);
		if (ret == 0) {
			po.updated = n;
		} else if (ret == -EEXIST || ret == -EAGAIN) {
			if (po.updated < 0)
				po.updated = 0;
			done += po.updated;
			n = po.updated + (ret == -EEXIST ? r->page_size : 0);
			off += n;
			len -= n;
			continue;
		} else {
			return ret;
		}
		done += po.updated;
		off += n;
		len -= n;
	}
	return done;
}
