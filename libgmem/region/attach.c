// SPDX-License-Identifier: MIT
/*
 * attach.c - the public face of the fault engine: attaching a page source
 * to a region, detaching it, prefetching (fill) and the engine's counters.
 */
#include <string.h>

#include "internal.h"
#include "region/engine.h"

int fault_params_check(const struct gmem_fault_params *p,
		       unsigned int *threads, unsigned int *fa)
{
	*threads = 1;
	*fa = 16;
	if (!p)
		return 0;
	if (p->flags || p->resv0)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(p->resv); i++)
		if (p->resv[i])
			return -EINVAL;
	if (p->nr_threads > GMEM_MAX_THREADS)
		return -EINVAL;
	if (p->fault_around > MAX_FAULT_AROUND ||
	    (p->fault_around & (p->fault_around - 1)))
		return -EINVAL;
	if (p->nr_threads)
		*threads = p->nr_threads;
	if (p->fault_around)
		*fa = p->fault_around;
	return 0;
}

int gmem_region_attach(struct gmem_region *r, struct gmem_source *src,
		       const struct gmem_fault_params *p)
{
	unsigned int threads, fa;
	int ret;

	if (!r || !src)
		return -EINVAL;
	ret = fault_params_check(p, &threads, &fa);
	if (ret < 0)
		return ret;
	if (!(r->flags & GMEM_REGION_MISSING))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (r->source || src->region) {
		ret = -EBUSY;
		goto out;
	}
	/* Before the source starts installing (a remote receive thread). */
	ret = blocktime_init(r);
	if (ret < 0)
		goto out;
	src->region = r;
	if (src->ops->attach) {
		ret = src->ops->attach(src, r);
		if (ret < 0) {
			src->region = NULL;
			goto out;
		}
	}
	r->nr_threads = threads;
	r->fault_around = fa;
	r->source = src;
	ret = fault_engine_get(r, ENGINE_USER_SOURCE);
	if (ret < 0) {
		fault_engine_put(r, ENGINE_USER_SOURCE);
		if (src->ops->detach)
			src->ops->detach(src);
		src->region = NULL;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int gmem_region_detach(struct gmem_region *r)
{
	struct gmem_source *src;

	pthread_mutex_lock(&r->lock);
	src = r->source;
	if (!src) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	/* Stops the readers before the source goes: none may still use it. */
	fault_engine_put(r, ENGINE_USER_SOURCE);
	if (src->ops->detach)
		src->ops->detach(src);
	src->region = NULL;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int64_t gmem_region_fill(struct gmem_region *r, uint64_t pgoff,
			 uint64_t nr_pages)
{
	uint64_t end = pgoff + nr_pages;
	struct staging st;
	int64_t done = 0;

	if (!r || !range_ok(r, pgoff, nr_pages))
		return -EINVAL;
	if (!r->source)
		return -ENOENT;
	done = staging_init(&st, r, MAX_FAULT_AROUND);
	while (done >= 0 && pgoff < end) {
		uint64_t n = end - pgoff < MAX_FAULT_AROUND ? end - pgoff
							    : MAX_FAULT_AROUND;
		int64_t ret = source_resolve(r, SOURCE_NO_FAULT, pgoff, n,
					     &st);

		done = ret < 0 ? ret : done + ret;
		pgoff += n;
	}
	staging_free(&st);
	return done;
}

int gmem_region_fault_stats(const struct gmem_region *r,
			    struct gmem_fault_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->faults = __atomic_load_n(&r->stats.faults, __ATOMIC_RELAXED);
	out->faults_present =
		__atomic_load_n(&r->stats.faults_present, __ATOMIC_RELAXED);
	out->pages_installed =
		__atomic_load_n(&r->stats.pages_installed, __ATOMIC_RELAXED);
	out->installs = __atomic_load_n(&r->stats.installs, __ATOMIC_RELAXED);
	out->eexist = __atomic_load_n(&r->stats.eexist, __ATOMIC_RELAXED);
	out->resolve_ns = __atomic_load_n(&r->stats.resolve_ns, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&r->stats.errors, __ATOMIC_RELAXED);
	out->poisoned = __atomic_load_n(&r->stats.poisoned, __ATOMIC_RELAXED);
	return 0;
}
