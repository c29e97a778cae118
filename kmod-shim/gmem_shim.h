/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmem_shim: the kernel API that lets a device driver reach a process's gmem
 * region the way the CPU does, so that missing pages fault to gmem's
 * user-space pager (userfaultfd) instead of failing. Pinning and copying
 * only; the driver keeps its own DMA mapping and device page tables.
 */
#ifndef GMEM_SHIM_H
#define GMEM_SHIM_H

#include <linux/mm_types.h>
#include <linux/types.h>

struct file;
struct gmem_shim_region;

/* gmem_shim_pin() flags */
#define GMEM_SHIM_PIN_WRITE (1U << 0) /* the device will write the pages */

/**
 * gmem_shim_region_create - Describe a range of a process's memory that a
 *                           device will reach.
 * @mm:   the process's mm (e.g. current->mm at registration); the region
 *        holds a reference to the mm_struct (not to its address space).
 * @addr: start, page aligned, a user address of @mm.
 * @len:  bytes, a multiple of PAGE_SIZE, > 0, within TASK_SIZE.
 *
 * Context: process context; may sleep.
 * Return: the region, or ERR_PTR(-EINVAL) bad range, ERR_PTR(-ENOMEM).
 */
struct gmem_shim_region *gmem_shim_region_create(struct mm_struct *mm,
						 unsigned long addr,
						 unsigned long len);

/**
 * gmem_shim_region_link - Tie the region to its pager's liveness.
 * @r:    region.
 * @sock: a socket connected to the pager (the region takes its own file
 *        reference). When it reports hang-up, end of stream or an error,
 *        the region is aborted with -EPIPE (gmem_shim_region_abort()).
 *
 * Without a link, a device call waiting on a pager that died waits until
 * the calling task gets a fatal signal.
 * Context: process context; at most once per region.
 * Return: 0; -ENOTSOCK @sock is not a socket; -EBUSY already linked.
 */
int gmem_shim_region_link(struct gmem_shim_region *r, struct file *sock);

/**
 * gmem_shim_region_abort - Fail every current and later device call on @r.
 * @r:   region.
 * @err: negative errno the calls return (the first abort's sticks).
 *
 * Tasks waiting for the pager in a fault on @r are woken and return @err.
 * Context: any, including atomic.
 */
void gmem_shim_region_abort(struct gmem_shim_region *r, int err);

/**
 * gmem_shim_region_destroy - Free a region.
 * @r: region with no call in flight and no page still pinned through it
 *     (pins do not reference the region; unpin them first regardless).
 *
 * Context: process context; may sleep.
 */
void gmem_shim_region_destroy(struct gmem_shim_region *r);

/**
 * gmem_shim_pin - Pin pages of the region for device access, faulting in
 *                 those that are missing.
 * @r:        region.
 * @off:      byte offset into @r, page aligned.
 * @nr_pages: pages, > 0; @off + @nr_pages * PAGE_SIZE <= region length.
 * @flags:    GMEM_SHIM_PIN_* mask.
 * @pages:    receives @nr_pages page pointers.
 *
 * A page the page tables do not map (or map read-only, for
 * GMEM_SHIM_PIN_WRITE) is faulted with handle_mm_fault() and
 * FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_REMOTE, so a
 * userfaultfd-registered page waits for the pager to resolve it (where HMM
 * and plain GUP get SIGBUS), then pinned with pin_user_pages_remote(). A
 * write fault goes through the page tables: write-protect and soft-dirty
 * tracking record it. Writes the device makes to the pages after this call
 * are not seen by the dirty log: pin for as short a time as the device
 * allows, and no longer than one dirty-log epoch.
 *
 * Context: process context (the caller's task sleeps in the fault); takes
 *          the mm's mmap_lock for read; thread-safe.
 * Return: 0, with every page pinned (release with gmem_shim_unpin()); on
 *         error nothing stays pinned: -EINVAL bad @off, @nr_pages or @flags;
 *         -EFAULT an address of the range is not mapped with the access
 *         asked for, or the fault failed (SIGBUS/SIGSEGV); -ENOMEM; -EINTR
 *         fatal signal; -ESRCH the process has exited; the region's abort
 *         error (-EPIPE when its pager link hung up).
 */
int gmem_shim_pin(struct gmem_shim_region *r, unsigned long off,
		  unsigned long nr_pages, unsigned int flags,
		  struct page **pages);

/**
 * gmem_shim_unpin - Release pages from gmem_shim_pin().
 * @pages:    the array gmem_shim_pin() filled.
 * @nr_pages: its length.
 * @dirty:    the device wrote the pages: mark them dirty for writeback.
 *
 * Context: process context; may sleep.
 */
void gmem_shim_unpin(struct page **pages, unsigned long nr_pages, bool dirty);

/**
 * gmem_shim_read - Copy from the region, as a device read (pin, copy, unpin).
 * @r:   region.
 * @off: byte offset into @r, any alignment.
 * @dst: kernel buffer of @len bytes.
 * @len: bytes, > 0; @off + @len <= region length.
 *
 * Context and errors: as gmem_shim_pin(); -EINVAL for a range outside @r.
 * Return: 0; on error the bytes of @dst before the failing page may be set.
 */
int gmem_shim_read(struct gmem_shim_region *r, unsigned long off, void *dst,
		   size_t len);

/**
 * gmem_shim_write - Copy into the region, as a device write.
 * @r:   region.
 * @off: byte offset into @r, any alignment.
 * @src: kernel buffer of @len bytes.
 * @len: bytes, > 0; @off + @len <= region length.
 *
 * Every page written is faulted writable first, so the dirty log reports it.
 * Context and errors: as gmem_shim_pin(); -EINVAL for a range outside @r.
 * Return: 0; on error the pages before the failing one may be written.
 */
int gmem_shim_write(struct gmem_shim_region *r, unsigned long off,
		    const void *src, size_t len);

#endif /* GMEM_SHIM_H */
