// SPDX-License-Identifier: GPL-2.0
/*
 * gmem_shim regions: the process range a device reaches, and how a device
 * call waiting for a pager is aborted (explicitly, or when the pager's link
 * socket hangs up). The fault and copy paths are in fault.c.
 */
#include <linux/err.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "shim.h"

void shim_waiter_add(struct gmem_shim_region *r, struct shim_waiter *w)
{
	w->task = current;
	spin_lock(&r->lock);
	list_add(&w->node, &r->waiters);
	spin_unlock(&r->lock);
}

void shim_waiter_del(struct gmem_shim_region *r, struct shim_waiter *w)
{
	spin_lock(&r->lock);
	list_del(&w->node);
	spin_unlock(&r->lock);
}

static bool link_hung_up(struct gmem_shim_region *r)
{
	return r->link &&
	       (vfs_poll(r->link, NULL) & (EPOLLHUP | EPOLLRDHUP | EPOLLERR));
}

static void region_wake(struct work_struct *work)
{
	struct gmem_shim_region *r = container_of(to_delayed_work(work),
						  struct gmem_shim_region,
						  wake_work);
	struct shim_waiter *w;
	bool busy;

	if (!READ_ONCE(r->err) && link_hung_up(r))
		cmpxchg(&r->err, 0, -EPIPE);
	if (!READ_ONCE(r->err))
		return;
	spin_lock(&r->lock);
	list_for_each_entry(w, &r->waiters, node)
		wake_up_process(w->task);
	busy = !list_empty(&r->waiters);
	spin_unlock(&r->lock);
	if (busy)
		schedule_delayed_work(&r->wake_work,
				      msecs_to_jiffies(SHIM_REWAKE_MS));
}

struct gmem_shim_region *gmem_shim_region_create(struct mm_struct *mm,
						 unsigned long addr,
						 unsigned long len)
{
	struct gmem_shim_region *r;

	if (!mm || !len || !PAGE_ALIGNED(addr) || !PAGE_ALIGNED(len) ||
	    addr + len < addr || addr + len > TASK_SIZE)
		return ERR_PTR(-EINVAL);
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return ERR_PTR(-ENOMEM);
	mmgrab(mm);
	r->mm = mm;
	r->addr = addr;
	r->len = len;
	spin_lock_init(&r->lock);
	INIT_LIST_HEAD(&r->waiters);
	INIT_DELAYED_WORK(&r->wake_work, region_wake);
	return r;
}
EXPORT_SYMBOL_GPL(gmem_shim_region_create);

void gmem_shim_region_abort(struct gmem_shim_region *r, int err)
{
	cmpxchg(&r->err, 0, err);
	mod_delayed_work(system_wq, &r->wake_work, 0);
}
EXPORT_SYMBOL_GPL(gmem_shim_region_abort);

/* Runs under the socket's wait-queue lock, maybe in softirq: defer. */
static int link_woken(wait_queue_entry_t *wait, unsigned int mode, int sync,
		      void *key)
{
	struct gmem_shim_region *r = container_of(wait, struct gmem_shim_region,
						  link_wait);

	mod_delayed_work(system_wq, &r->wake_work, 0);
	return 0;
}

static void link_queue(struct file *file, wait_queue_head_t *wqh,
		       poll_table *pt)
{
	struct gmem_shim_region *r = container_of(pt, struct gmem_shim_region,
						  link_pt);

	if (r->link_wqh)
		return;
	r->link_wqh = wqh;
	add_wait_queue(wqh, &r->link_wait);
}

int gmem_shim_region_link(struct gmem_shim_region *r, struct file *sock)
{
	if (!sock_from_file(sock))
		return -ENOTSOCK;
	if (r->link)
		return -EBUSY;
	r->link = get_file(sock);
	init_waitqueue_func_entry(&r->link_wait, link_woken);
	init_poll_funcptr(&r->link_pt, link_queue);
	/* Queues link_wait; a pager that is already gone aborts at once. */
	if (vfs_poll(sock, &r->link_pt) & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
		gmem_shim_region_abort(r, -EPIPE);
	return 0;
}
EXPORT_SYMBOL_GPL(gmem_shim_region_link);

void gmem_shim_region_destroy(struct gmem_shim_region *r)
{
	if (r->link_wqh)
		remove_wait_queue(r->link_wqh, &r->link_wait);
	cancel_delayed_work_sync(&r->wake_work);
	if (r->link)
		fput(r->link);
	mmdrop(r->mm);
	kfree(r);
}
EXPORT_SYMBOL_GPL(gmem_shim_region_destroy);
