// SPDX-License-Identifier: MIT
/*
 * softdirty.c - the SOFT_DIRTY dirty backend (CONFIG_MEM_SOFT_DIRTY,
 * any kernel since 3.11): writing 4 to the owner's /proc/PID/clear_refs
 * clears the soft-dirty bit of every pte of that process and write-protects
 * them; the next write sets it again; pagemap bit 55 reads it.
 * Documentation/admin-guide/mm/soft-dirty.rst. No userfaultfd involved.
 */
#include <stdlib.h>

#include "dirty/dirty.h"
#include "syscall.h"

#define PM_SOFT_DIRTY (1ULL << 55)
/* pagemap entries read per pread(2): 64 KiB, 256 MiB of 4 KiB pages. */
#define PM_CHUNK 8192

struct sd_log {
	uint64_t ent[PM_CHUNK];
	unsigned int base_shift; /* log2 of the base page size of pagemap */
};

/* clear_refs 4 acts on the whole owner's mm, not a range: every write of
 * that process pays one extra minor fault per page after each collect. */
static int clear_soft_dirty(struct gmem_region *r)
{
	int ret = sys_ret(write(r->clear_refs_fd, "4", 1));

	return ret == 1 ? 0 : ret < 0 ? ret : -EIO;
}

static int sd_start(struct gmem_region *r, struct dirty_log *d)
{
	uint64_t feat = 0;
	struct sd_log *s;
	int ret = gmem_features(&feat);

	if (ret < 0)
		return ret;
	if (!(feat & GMEM_FEAT_SOFT_DIRTY) || r->pagemap_fd < 0 ||
	    r->clear_refs_fd < 0)
		return -EOPNOTSUPP;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base_shift = __builtin_ctzl(sysconf(_SC_PAGESIZE));
	/* Also clears VM_SOFTDIRTY, which a new mapping starts with and which
	 * makes every page of it read soft-dirty. */
	ret = clear_soft_dirty(r);
	if (ret < 0) {
		free(s);
		return ret;
	}
	d->priv = s;
	return 0;
}

/* Reads the pagemap entries of base pages [first, first + n) of the owner's
 * mm and sets in @out the region page of each soft-dirty one. */
static int sd_read(struct gmem_region *r, struct sd_log *s, uint64_t first,
		   uint64_t n, struct bitmap *out)
{
	unsigned int sub = r->page_shift - s->base_shift;
	uint64_t uva_base = r->uva >> s->base_shift;

	while (n) {
		uint64_t k = n < PM_CHUNK ? n : PM_CHUNK;
		int ret = sys_ret(pread(r->pagemap_fd, s->ent,
					k * sizeof(s->ent[0]),
					first * sizeof(s->ent[0])));

		if (ret < 0)
			return ret;
		if ((uint64_t)ret != k * sizeof(s->ent[0]))
			return -EIO;
		for (uint64_t i = 0; i < k; i++)
			if (s->ent[i] & PM_SOFT_DIRTY)
				bitmap_set(out, (first + i - uva_base) >> sub);
		first += k;
		n -= k;
	}
	return 0;
}

/*
 * Read, then clear: a write that lands between the two on a page that read
 * clean is lost (its bit is cleared unseen), because clear_refs cannot be
 * atomic with the read nor limited to a range. Exact only when the writers
 * are paused across gmem_dirty_collect(), as CRIU freezes its task.
 */
static int sd_collect(struct gmem_region *r, struct dirty_log *d,
		      struct bitmap *out)
{
	struct sd_log *s = d->priv;
	unsigned int sub = r->page_shift - s->base_shift;
	int ret = sd_read(r, s,
			  (r->uva >> s->base_shift) + (d->pgoff << sub),
			  d->nr_pages << sub, out);

	return ret < 0 ? ret : clear_soft_dirty(r);
}

static int sd_stop(struct gmem_region *r, struct dirty_log *d)
{
	free(d->priv);
	d->priv = NULL;
	return 0;
}

const struct dirty_ops dirty_softdirty_ops = {
	.backend = GMEM_DIRTY_SOFT_DIRTY,
	.start = sd_start,
	.collect = sd_collect,
	.stop = sd_stop,
};
