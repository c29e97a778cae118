// SPDX-License-Identifier: MIT
/*
 * thp.c - transparent huge pages for regions of 4 KiB pages
 * (GMEM_REGION_THP): whether the kernel's THP settings let MADV_HUGEPAGE
 * take 2 MiB folios for the region's memory, and the advice itself
 * (Documentation/admin-guide/mm/transhuge.rst). userfaultfd still works on
 * 4 KiB ptes there; hugetlbfs regions (2 MiB pages) are region.c's.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "syscall.h"

#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"

/* The bracketed word of a THP setting ("always [madvise] never"). */
static int thp_setting(const char *path, char *word, size_t len)
{
	char buf[128], *open_, *close_;
	int fd = sys_ret(open(path, O_RDONLY | O_CLOEXEC));
	ssize_t n;

	if (fd < 0)
		return fd;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	open_ = strchr(buf, '[');
	close_ = open_ ? strchr(open_, ']') : NULL;
	if (!close_ || (size_t)(close_ - open_) >= len)
		return -EIO;
	memcpy(word, open_ + 1, close_ - open_ - 1);
	word[close_ - open_ - 1] = '\0';
	return 0;
}

/* Whether MADV_HUGEPAGE gets 2 MiB folios for anonymous memory or shmem:
 * the 2 MiB size's own setting, or the global one it inherits. */
static bool thp_allowed(bool shmem)
{
	const char *name = shmem ? "shmem_enabled" : "enabled";
	char path[128], word[32];

	snprintf(path, sizeof(path), THP_DIR "hugepages-2048kB/%s", name);
	if (thp_setting(path, word, sizeof(word)) < 0 ||
	    !strcmp(word, "inherit")) {
		snprintf(path, sizeof(path), THP_DIR "%s", name);
		if (thp_setting(path, word, sizeof(word)) < 0)
			return false;
	}
	return strcmp(word, "never") && strcmp(word, "deny");
}

int region_thp_setup(struct gmem_region *r)
{
	int ret;

	if (!thp_allowed(r->fd >= 0))
		return -EOPNOTSUPP;
	ret = sys_ret(madvise(r->addr, r->size, MADV_HUGEPAGE));
	if (!ret && r->alias && r->alias != r->addr)
		ret = sys_ret(madvise(r->alias, r->size, MADV_HUGEPAGE));
	return ret;
}
