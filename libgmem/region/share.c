// SPDX-License-Identifier: MIT
/*
 * share.c - handing a region to another process over an AF_UNIX socket:
 * its description plus, by SCM_RIGHTS, the memfd, the userfaultfd and the
 * owner's /proc pagemap and clear_refs. userfaultfd and pagemap ioctls act
 * on the mm that opened them, so the receiver resolves the owner's faults
 * and reads the owner's dirty log (Firecracker's external handler model).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "region/engine.h"
#include "syscall.h"

#define SHARE_MAGIC 0x676d656d72676e31ULL /* "gmemrgn1" */
#define SHARE_NR_FDS 5

/* The description sent with the fds; both ends are one host, one ABI. */
struct share_msg {
	uint64_t magic;
	uint64_t uva;
	uint64_t nr_pages;
	uint64_t fd_off;
	uint64_t uffd_features;
	uint64_t reg_mode;
	uint32_t page_size;
	uint32_t backing;
	uint32_t flags;
	uint32_t dirty_backend;
	uint32_t nr_fds;
	uint32_t fd_mask; /* which of fd, uffd, pagemap, clear_refs, fill follow */
};

int gmem_region_export(const struct gmem_region *r, int sock)
{
	int all[SHARE_NR_FDS] = { r->fd, r->uffd, r->pagemap_fd,
				  r->clear_refs_fd, r->fill_fd };
	struct share_msg m = {
		.magic = SHARE_MAGIC, .uva = r->uva, .nr_pages = r->nr_pages,
		.fd_off = r->fd_off, .uffd_features = r->uffd_features,
		.reg_mode = r->reg_mode, .page_size = r->page_size,
		.backing = r->backing, .flags = r->flags,
		.dirty_backend = r->dirty_backend,
	};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SHARE_NR_FDS)];
	} ctl;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf };
	struct cmsghdr *c;
	int fds[SHARE_NR_FDS], ret;

	if (r->imported || r->fd < 0)
		return -EINVAL;
	for (int i = 0; i < SHARE_NR_FDS; i++) {
		if (all[i] < 0)
			continue;
		fds[m.nr_fds++] = all[i];
		m.fd_mask |= 1U << i;
	}
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * m.nr_fds);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * m.nr_fds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * m.nr_fds);
	ret = sys_ret(sendmsg(sock, &msg, MSG_NOSIGNAL));
	return ret < 0 ? ret : 0;
}

/* Receives the description and its fds; *nfds of them land in @fds. */
static int share_recv(int sock, struct share_msg *m, int *fds, int *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SHARE_NR_FDS)];
	} ctl;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);

	*nfds = 0;
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		*nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (*nfds > SHARE_NR_FDS)
			*nfds = SHARE_NR_FDS;
		memcpy(fds, CMSG_DATA(c), sizeof(int) * *nfds);
	}
	if ((size_t)n != sizeof(*m) || msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC))
		return -EPROTO;
	return 0;
}

static bool share_msg_valid(const struct share_msg *m, int nfds)
{
	return m->magic == SHARE_MAGIC && m->nr_fds == (uint32_t)nfds &&
	       (uint32_t)__builtin_popcount(m->fd_mask) == m->nr_fds &&
	       (m->fd_mask & 3) == 3 && m->nr_pages &&
	       (m->page_size == GMEM_PAGE_4K || m->page_size == GMEM_PAGE_2M) &&
	       m->nr_pages <= UINT64_MAX / m->page_size &&
	       m->fd_off % m->page_size == 0 && m->uva % m->page_size == 0;
}

/* Wires the received fds (always taken over) and maps the memory here. */
static int share_build(const struct share_msg *m, const int *fds,
		       struct gmem_region **out)
{
	struct gmem_region *r;
	int *slot[SHARE_NR_FDS];
	void *p = NULL;
	int ret, k = 0;

	ret = region_alloc(&r, m->nr_pages, m->page_size, m->flags);
	if (ret < 0) {
		for (int i = 0; i < (int)m->nr_fds; i++)
			close(fds[i]);
		return ret;
	}
	slot[0] = &r->fd;
	slot[1] = &r->uffd;
	slot[2] = &r->pagemap_fd;
	slot[3] = &r->clear_refs_fd;
	slot[4] = &r->fill_fd;
	for (int i = 0; i < SHARE_NR_FDS; i++)
		if (m->fd_mask & (1U << i))
			*slot[i] = fds[k++];
	r->imported = true;
	r->uva = m->uva;
	r->fd_off = m->fd_off;
	r->uffd_features = m->uffd_features;
	r->reg_mode = m->reg_mode;
	r->backing = m->backing;
	r->dirty_backend = m->dirty_backend;
	ret = sys_mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       r->fd_off, &p);
	if (ret < 0) {
		gmem_region_destroy(r);
		return ret;
	}
	r->addr = r->alias = p;
	/* The owner's fill gate: read here, raised there. */
	if (r->fill_fd >= 0) {
		ret = region_fill_map(r, PROT_READ);
		if (ret < 0) {
			gmem_region_destroy(r);
			return ret;
		}
	}
	/* The page cache is filled through this mapping here: it needs the
	 * owner's MADV_HUGEPAGE too. */
	if (r->flags & GMEM_REGION_THP) {
		ret = region_thp_setup(r);
		if (ret < 0) {
			gmem_region_destroy(r);
			return ret;
		}
	}
	*out = r;
	return 0;
}

int gmem_region_import(int sock, struct gmem_region **out)
{
	struct share_msg m;
	int fds[SHARE_NR_FDS], nfds, ret;

	if (!out)
		return -EINVAL;
	ret = share_recv(sock, &m, fds, &nfds);
	if (ret == 0 && share_msg_valid(&m, nfds))
		return share_build(&m, fds, out);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return ret < 0 ? ret : -EPROTO;
}
