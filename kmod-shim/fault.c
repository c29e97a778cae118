// SPDX-License-Identifier: GPL-2.0
/*
 * The device-fault path: pin a region's pages, faulting the missing ones
 * with FAULT_FLAG_ALLOW_RETRY so userfaultfd hands them to the pager and
 * waits, and copy to or from them as a device would. Region set-up and
 * aborts are in region.c.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/version.h>

#include "shim.h"

/* Pages pinned at a time by gmem_shim_read()/gmem_shim_write(). */
#define SHIM_COPY_PAGES 32
/*
 * A fault that succeeded is followed by a pin that finds the page; a page
 * zapped in between (reclaim, a racing MADV_DONTNEED) faults again. Bound
 * the rounds so a page GUP can never follow cannot spin for ever.
 */
#define SHIM_FAULT_ROUNDS 8

/*
 * Pages this module pinned and unpinned since it loaded, read-only in
 * /sys/module/gmem_shim/parameters/: the kernel's nr_foll_pin_* counters
 * are the whole machine's (direct I/O, 9p), so only these tell whether the
 * module itself left a page pinned.
 */
static atomic_long_t pages_pinned = ATOMIC_LONG_INIT(0);
static atomic_long_t pages_unpinned = ATOMIC_LONG_INIT(0);

static int get_count(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(kp->arg));
}

static const struct kernel_param_ops count_ops = { .get = get_count };
module_param_cb(pages_pinned, &count_ops, &pages_pinned, 0444);
MODULE_PARM_DESC(pages_pinned, "pages pinned since load");
module_param_cb(pages_unpinned, &count_ops, &pages_unpinned, 0444);
MODULE_PARM_DESC(pages_unpinned, "pages unpinned since load");

/*
 * Fault one page in as the CPU would: handle_userfault() queues the fault
 * for the pager and sleeps (killable) until it is resolved, then returns
 * VM_FAULT_RETRY with mmap_lock dropped; so do we, until the page is mapped.
 * Each round first checks for an abort (a dead pager) and fatal signals.
 */
static int fault_page(struct gmem_shim_region *r, unsigned long addr,
		      bool write)
{
	unsigned int flags = FAULT_FLAG_REMOTE | FAULT_FLAG_ALLOW_RETRY |
			     FAULT_FLAG_KILLABLE;
	unsigned long need = write ? VM_WRITE : VM_READ;
	struct vm_area_struct *vma;
	vm_fault_t ret;
	int err;

	if (write)
		flags |= FAULT_FLAG_WRITE;
	for (;;) {
		err = READ_ONCE(r->err);
		if (err)
			return err;
		if (fatal_signal_pending(current))
			return -EINTR;
		if (mmap_read_lock_killable(r->mm))
			return -EINTR;
		vma = vma_lookup(r->mm, addr);
		if (!vma || !(vma->vm_flags & need)) {
			mmap_read_unlock(r->mm);
			return -EFAULT;
		}
		ret = handle_mm_fault(vma, addr, flags, NULL);
		if (ret & VM_FAULT_COMPLETED)
			return 0;
		if (ret & VM_FAULT_RETRY) {
			flags |= FAULT_FLAG_TRIED;
			continue;
		}
		mmap_read_unlock(r->mm);
		if (ret & VM_FAULT_ERROR)
			return vm_fault_to_errno(ret, 0) ?: -EFAULT;
		return 0;
	}
}

/* Linux 6.5 dropped pin_user_pages_remote()'s vmas argument. */
static long shim_pin_remote(struct mm_struct *mm, unsigned long addr,
			    unsigned long nr_pages, unsigned int gup,
			    struct page **pages)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	return pin_user_pages_remote(mm, addr, nr_pages, gup, pages, NULL);
#else
	return pin_user_pages_remote(mm, addr, nr_pages, gup, pages, NULL,
				     NULL);
#endif
}

/*
 * Pin what is mapped without faulting (FOLL_NOFAULT: GUP's own fault path
 * would get SIGBUS from userfaultfd, as it passes no ALLOW_RETRY without a
 * `locked` argument), fault the first page that is not, and go on.
 */
static int pin_range(struct gmem_shim_region *r, unsigned long addr,
		     unsigned long nr_pages, bool write, struct page **pages)
{
	unsigned int gup = FOLL_NOFAULT | (write ? FOLL_WRITE : 0);
	unsigned long done = 0;
	unsigned int rounds = 0;
	long got;
	int err = 0;

	while (done < nr_pages) {
		unsigned long at = addr + done * PAGE_SIZE;

		if (mmap_read_lock_killable(r->mm)) {
			err = -EINTR;
			break;
		}
		got = shim_pin_remote(r->mm, at, nr_pages - done, gup,
				      pages + done);
		mmap_read_unlock(r->mm);
		if (got > 0) {
			done += got;
			rounds = 0;
			continue;
		}
		if (got < 0 && got != -EFAULT) {
			err = got;
			break;
		}
		if (++rounds > SHIM_FAULT_ROUNDS) {
			err = -EFAULT;
			break;
		}
		err = fault_page(r, at, write);
		if (err)
			break;
	}
	if (err)
		unpin_user_pages(pages, done);
	else
		atomic_long_add(nr_pages, &pages_pinned);
	return err;
}

static bool range_in_region(struct gmem_shim_region *r, unsigned long off,
			    unsigned long len)
{
	return len && off < r->len && len <= r->len - off;
}

int gmem_shim_pin(struct gmem_shim_region *r, unsigned long off,
		  unsigned long nr_pages, unsigned int flags,
		  struct page **pages)
{
	struct shim_waiter w;
	int err;

	if (flags & ~GMEM_SHIM_PIN_WRITE || !PAGE_ALIGNED(off) ||
	    nr_pages > r->len >> PAGE_SHIFT ||
	    !range_in_region(r, off, nr_pages << PAGE_SHIFT))
		return -EINVAL;
	err = READ_ONCE(r->err);
	if (err)
		return err;
	if (!mmget_not_zero(r->mm))
		return -ESRCH;
	shim_waiter_add(r, &w);
	err = pin_range(r, r->addr + off, nr_pages,
			flags & GMEM_SHIM_PIN_WRITE, pages);
	shim_waiter_del(r, &w);
	mmput(r->mm);
	return err;
}
EXPORT_SYMBOL_GPL(gmem_shim_pin);

void gmem_shim_unpin(struct page **pages, unsigned long nr_pages, bool dirty)
{
	unpin_user_pages_dirty_lock(pages, nr_pages, dirty);
	atomic_long_add(nr_pages, &pages_unpinned);
}
EXPORT_SYMBOL_GPL(gmem_shim_unpin);

/* Copy between @buf and the pinned pages, from byte @skip of the first. */
static void copy_pages(struct page **pages, unsigned long skip, void *buf,
		       size_t len, bool write)
{
	size_t n;
	char *va;

	for (; len; pages++, skip = 0, buf += n, len -= n) {
		n = min_t(size_t, len, PAGE_SIZE - skip);
		va = kmap_local_page(*pages);
		if (write) {
			memcpy(va + skip, buf, n);
			flush_dcache_page(*pages);
		} else {
			memcpy(buf, va + skip, n);
		}
		kunmap_local(va);
	}
}

static int copy_region(struct gmem_shim_region *r, unsigned long off,
		       void *buf, size_t len, bool write)
{
	struct page *pages[SHIM_COPY_PAGES];
	unsigned long skip, nr;
	size_t n;
	int err;

	if (!range_in_region(r, off, len))
		return -EINVAL;
	for (; len; off += n, buf += n, len -= n) {
		skip = offset_in_page(off);
		n = min_t(size_t, len, SHIM_COPY_PAGES * PAGE_SIZE - skip);
		nr = DIV_ROUND_UP(skip + n, PAGE_SIZE);
		err = gmem_shim_pin(r, off - skip, nr,
				    write ? GMEM_SHIM_PIN_WRITE : 0, pages);
		if (err)
			return err;
		copy_pages(pages, skip, buf, n, write);
		gmem_shim_unpin(pages, nr, write);
	}
	return 0;
}

int gmem_shim_read(struct gmem_shim_region *r, unsigned long off, void *dst,
		   size_t len)
{
	return copy_region(r, off, dst, len, false);
}
EXPORT_SYMBOL_GPL(gmem_shim_read);

int gmem_shim_write(struct gmem_shim_region *r, unsigned long off,
		    const void *src, size_t len)
{
	return copy_region(r, off, (void *)src, len, true);
}
EXPORT_SYMBOL_GPL(gmem_shim_write);
