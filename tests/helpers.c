// SPDX-License-Identifier: MIT
/* helpers.c - see helpers.h. */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"

void require_uffd(void)
{
	uint64_t feat;
	int ret = gmem_features(&feat);

	if (ret < 0)
		cr_skip_test("no userfaultfd: %s (no /dev/userfaultfd access and "
			     "vm.unprivileged_userfaultfd=0?)", strerror(-ret));
}

void require_features(uint64_t want, const char *why)
{
	uint64_t feat = 0;

	require_uffd();
	gmem_features(&feat);
	if ((feat & want) != want)
		cr_skip_test("%s", why);
}

struct gmem_region *region_new(uint64_t nr_pages, uint32_t page_size,
			       uint32_t backing, uint32_t flags)
{
	struct gmem_region_params p = {
		.nr_pages = nr_pages, .page_size = page_size,
		.backing = backing, .flags = flags,
	};
	struct gmem_region *r = NULL;
	int ret = gmem_region_create(&p, &r);

	cr_assert_eq(ret, 0, "gmem_region_create: %s", strerror(-ret));
	return r;
}

void pattern_fill(void *dst, uint64_t seed, uint64_t pgoff, uint64_t nr_pages,
		  uint32_t page_size)
{
	uint64_t *w = dst;
	uint64_t per = page_size / 8;

	for (uint64_t p = 0; p < nr_pages; p++)
		for (uint64_t i = 0; i < per; i++)
			w[p * per + i] = pattern_word(seed, pgoff + p, i);
}

int pattern_check(const void *p, uint64_t seed, uint64_t pgoff,
		  uint32_t page_size)
{
	const uint64_t *w = p;

	for (uint64_t i = 0; i < page_size / 8; i++)
		if (w[i] != pattern_word(seed, pgoff, i))
			return 0;
	return 1;
}
