// SPDX-License-Identifier: MIT
/*
 * page-source.c - page sources (zero, file, caller's callback), attaching one to
 * a region and resolving page runs from it. The remote source lives in its
 * own file; it plugs in through the same ops.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "region/engine.h"
#include "syscall.h"

int source_new(const struct source_ops *ops, void *priv,
	       struct gmem_source **out)
{
	struct gmem_source *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->priv = priv;
	*out = s;
	return 0;
}

void gmem_source_destroy(struct gmem_source *s)
{
	if (!s)
		return;
	if (s->ops->destroy)
		s->ops->destroy(s);
	free(s);
}

static int fill_adapter(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	struct gmem_source *s = ctx;

	return s->ops->fill(s, pgoff, nr, dst);
}

int64_t source_resolve(struct gmem_region *r, uint64_t fault, uint64_t pgoff,
		       uint64_t nr, struct staging *st)
{
	struct gmem_source *s = r->source;

	if (s->ops->fill)
		return install_range(r, pgoff, nr, fill_adapter, s, st);
	return s->ops->request(s, fault, pgoff, nr);
}

/* --- zero ---------------------------------------------------------------- */

static int zero_fill(struct gmem_source *s, uint64_t pgoff, uint64_t nr,
		     void *dst)
{
	memset(dst, 0, nr << s->region->page_shift);
	return 0;
}

static const struct source_ops zero_ops = { .fill = zero_fill };

int gmem_source_zero(struct gmem_source **out)
{
	return out ? source_new(&zero_ops, NULL, out) : -EINVAL;
}

/* --- file ---------------------------------------------------------------- */

struct file_source {
	int fd;
	uint64_t off;
};

static int file_fill(struct gmem_source *s, uint64_t pgoff, uint64_t nr,
		     void *dst)
{
	struct file_source *f = s->priv;
	uint64_t len = nr << s->region->page_shift, done = 0;
	uint64_t pos = f->off + (pgoff << s->region->page_shift);

	while (done < len) {
		ssize_t n = pread(f->fd, (uint8_t *)dst + done, len - done,
				  pos + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* past the end of the file: zeros */
		done += n;
	}
	memset((uint8_t *)dst + done, 0, len - done);
	return 0;
}

static void file_destroy(struct gmem_source *s)
{
	struct file_source *f = s->priv;

	close(f->fd);
	free(f);
}

static const struct source_ops file_ops = {
	.fill = file_fill,
	.destroy = file_destroy,
};

int gmem_source_file(int fd, uint64_t off, struct gmem_source **out)
{
	struct file_source *f;
	int ret;

	if (!out || off % 4096)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->off = off;
	f->fd = sys_ret(fcntl(fd, F_DUPFD_CLOEXEC, 0));
	if (f->fd < 0) {
		ret = f->fd;
		free(f);
		return ret;
	}
	ret = source_new(&file_ops, f, out);
	if (ret < 0) {
		close(f->fd);
		free(f);
	}
	return ret;
}

/* --- callback ------------------------------------------------------------ */

struct callback_source {
	gmem_fill_fn fn;
	void *ctx;
};

static int callback_fill(struct gmem_source *s, uint64_t pgoff, uint64_t nr,
			 void *dst)
{
	struct callback_source *c = s->priv;

	return c->fn(c->ctx, pgoff, nr, dst);
}

static void callback_destroy(struct gmem_source *s)
{
	free(s->priv);
}

static const struct source_ops callback_ops = {
	.fill = callback_fill,
	.destroy = callback_destroy,
};

int gmem_source_callback(gmem_fill_fn fn, void *ctx, struct gmem_source **out)
{
	struct callback_source *c;
	int ret;

	if (!fn || !out)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->ctx = ctx;
	ret = source_new(&callback_ops, c, out);
	if (ret < 0)
		free(c);
	return ret;
}
