/* SPDX-License-Identifier: MIT */
/*
 * The ioctl ABI of /dev/gmem-shim (kmod-shim/), shared by the kernel module
 * and user space: the test device, a DMA engine that reads or writes a range
 * of a registered region through the module's device-fault path. Fixed-size
 * __u64 fields and explicit padding, so 32- and 64-bit callers agree.
 */
#ifndef GMEM_UAPI_H
#define GMEM_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define GMEM_SHIM_DEV_NAME "gmem-shim"

/*
 * GMEM_SHIM_IOC_REGISTER: register a range of the caller's address space
 * (a gmem region, or part of one) with this open file; one region per open
 * file, released when the file is closed (or the process exits).
 * Errors: -EINVAL @addr or @len not page aligned, @len 0, the range wraps
 * or leaves the user address space, unknown @flags, non-zero @resv;
 * -EBADF @link_fd not open; -ENOTSOCK @link_fd not a socket; -EBUSY this
 * file already has a region; -ENOMEM; -EFAULT bad argument pointer.
 */
struct gmem_shim_register {
	__u64 addr;	/* start, page aligned */
	__u64 len;	/* bytes, a multiple of the page size, > 0 */
	__s32 link_fd;	/* -1, or a socket connected to the pager: when it
			 * hangs up (the pager is gone) every device call on
			 * the region fails with -EPIPE instead of waiting */
	__u32 flags;	/* none yet: 0 */
	__u64 resv[2];	/* must be zero */
};

#define GMEM_SHIM_DMA_READ  0 /* region -> @buf (the device reads) */
#define GMEM_SHIM_DMA_WRITE 1 /* @buf -> region (the device writes) */

/*
 * GMEM_SHIM_IOC_DMA: copy @len bytes between the registered region at byte
 * offset @off and the caller's buffer @buf, as a device would: the region's
 * pages are pinned through the module's fault path (missing pages fault
 * and wait for the pager, writes fault through the page tables so the
 * dirty log sees them), copied, and unpinned. Any byte alignment.
 * Errors: -ENOENT no region registered; -EINVAL unknown @dir or @flags,
 * non-zero @resv, @len 0, the range leaves the region; -EFAULT @buf not
 * accessible, or a region page the process cannot map (unmapped,
 * PROT_NONE, read-only for a write); -EPIPE the pager hung up
 * (gmem_shim_register.link_fd); -EINTR a fatal signal; -ESRCH the
 * registering process has exited; -ENOMEM. On error, bytes of @buf (read)
 * or of the region (write) before the failing page may have been copied.
 */
struct gmem_shim_dma {
	__u64 off;	/* byte offset into the region */
	__u64 len;	/* bytes, > 0; @off + @len <= region length */
	__u64 buf;	/* user address of @len bytes */
	__u32 dir;	/* GMEM_SHIM_DMA_READ or GMEM_SHIM_DMA_WRITE */
	__u32 flags;	/* none yet: 0 */
	__u64 resv[2];	/* must be zero */
};

#define GMEM_SHIM_IOC_MAGIC 0xb7
#define GMEM_SHIM_IOC_REGISTER \
	_IOW(GMEM_SHIM_IOC_MAGIC, 1, struct gmem_shim_register)
#define GMEM_SHIM_IOC_DMA _IOW(GMEM_SHIM_IOC_MAGIC, 2, struct gmem_shim_dma)

#endif /* GMEM_UAPI_H */
