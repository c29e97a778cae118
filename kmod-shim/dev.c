// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/gmem-shim: a test device for the device-fault path. Each open file
 * registers one region of its process and acts as a DMA engine on it
 * (GMEM_SHIM_IOC_DMA), through the same calls a driver makes. Also the
 * module's entry points. The ioctl ABI is gmem/uapi.h.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <gmem/uapi.h>

#include "shim.h"

/* The bounce buffer between the caller's buffer and the region. */
#define DMA_CHUNK (1UL << 20)

static int dev_link(struct gmem_shim_region *r, int fd)
{
	struct file *sock;
	int err;

	if (fd == -1)
		return 0;
	sock = fget(fd);
	if (!sock)
		return -EBADF;
	err = gmem_shim_region_link(r, sock);
	fput(sock);
	return err;
}

static long dev_register(struct file *file, void __user *uarg)
{
	struct gmem_shim_register arg;
	struct gmem_shim_region *r;
	int err;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags || arg.resv[0] || arg.resv[1] || arg.link_fd < -1)
		return -EINVAL;
	if (READ_ONCE(file->private_data))
		return -EBUSY;
	r = gmem_shim_region_create(current->mm, arg.addr, arg.len);
	if (IS_ERR(r))
		return PTR_ERR(r);
	err = dev_link(r, arg.link_fd);
	if (!err && cmpxchg(&file->private_data, NULL, r))
		err = -EBUSY;
	if (err)
		gmem_shim_region_destroy(r);
	return err;
}

static int dma_chunk(struct gmem_shim_region *r, const struct gmem_shim_dma *d,
		     u64 done, void *kbuf, size_t n)
{
	void __user *ubuf = u64_to_user_ptr(d->buf + done);
	int err;

	if (d->dir == GMEM_SHIM_DMA_READ) {
		err = gmem_shim_read(r, d->off + done, kbuf, n);
		if (!err && copy_to_user(ubuf, kbuf, n))
			err = -EFAULT;
		return err;
	}
	if (copy_from_user(kbuf, ubuf, n))
		return -EFAULT;
	return gmem_shim_write(r, d->off + done, kbuf, n);
}

static long dev_dma(struct file *file, void __user *uarg)
{
	struct gmem_shim_region *r = READ_ONCE(file->private_data);
	struct gmem_shim_dma d;
	void *kbuf;
	u64 done;
	size_t n;
	int err = 0;

	if (copy_from_user(&d, uarg, sizeof(d)))
		return -EFAULT;
	if (!r)
		return -ENOENT;
	if (d.dir > GMEM_SHIM_DMA_WRITE || d.flags || d.resv[0] || d.resv[1] ||
	    !d.len || d.off >= r->len || d.len > r->len - d.off)
		return -EINVAL;
	if (!access_ok(u64_to_user_ptr(d.buf), d.len))
		return -EFAULT;
	kbuf = kvmalloc(min_t(u64, d.len, DMA_CHUNK), GFP_KERNEL);
	if (!kbuf)
		return -ENOMEM;
	for (done = 0; done < d.len && !err; done += n) {
		n = min_t(u64, d.len - done, DMA_CHUNK);
		err = dma_chunk(r, &d, done, kbuf, n);
	}
	kvfree(kbuf);
	return err;
}

static long dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case GMEM_SHIM_IOC_REGISTER:
		return dev_register(file, (void __user *)arg);
	case GMEM_SHIM_IOC_DMA:
		return dev_dma(file, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* misc_open() sets private_data to the miscdevice: it holds our region. */
static int dev_open(struct inode *inode, struct file *file)
{
	file->private_data = NULL;
	return nonseekable_open(inode, file);
}

/* No ioctl is in flight on a file being released: they hold it. */
static int dev_release(struct inode *inode, struct file *file)
{
	struct gmem_shim_region *r = file->private_data;

	if (r)
		gmem_shim_region_destroy(r);
	return 0;
}

static const struct file_operations dev_fops = {
	.owner = THIS_MODULE,
	.open = dev_open,
	.unlocked_ioctl = dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = dev_release,
	.llseek = noop_llseek,
};

/* Root only: the device reads and writes any registered range. */
static struct miscdevice dev_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = GMEM_SHIM_DEV_NAME,
	.fops = &dev_fops,
	.mode = 0600,
};

static int __init shim_init(void)
{
	return misc_register(&dev_misc);
}

/*
 * Every region lives in an open file of the device (which holds a module
 * reference) or in a driver that links against our symbols (which holds
 * one too), so unloading with a region registered is refused.
 */
static void __exit shim_exit(void)
{
	misc_deregister(&dev_misc);
}

module_init(shim_init);
module_exit(shim_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("gmem device-fault bridge to userfaultfd regions");
