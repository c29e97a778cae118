/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gmem_shim internals: the region, its list of tasks waiting in a fault,
 * and the pager link that aborts them. Not for drivers (see gmem_shim.h).
 */
#ifndef SHIM_H
#define SHIM_H

#include <linux/list.h>
#include <linux/poll.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "gmem_shim.h"

struct gmem_shim_region {
	struct mm_struct *mm;	/* mmgrab()ed */
	unsigned long addr;
	unsigned long len;
	int err;		/* 0, or the abort error; set once (cmpxchg) */

	/*
	 * Tasks inside gmem_shim_pin(). A task waiting for the pager sleeps
	 * in handle_userfault(), which only the pager's resolve wakes; an
	 * abort wakes them itself, and keeps waking them every
	 * SHIM_REWAKE_MS until none is left, since a wake that lands just
	 * before a task starts to sleep is lost.
	 */
	spinlock_t lock;
	struct list_head waiters;
	struct delayed_work wake_work;

	/* The pager link: its wake-ups (any event) schedule wake_work, which
	 * polls the socket for hang-up in process context. */
	struct file *link;
	wait_queue_head_t *link_wqh;
	wait_queue_entry_t link_wait;
	poll_table link_pt;
};

struct shim_waiter {
	struct list_head node;
	struct task_struct *task;
};

#define SHIM_REWAKE_MS 10

void shim_waiter_add(struct gmem_shim_region *r, struct shim_waiter *w);
void shim_waiter_del(struct gmem_shim_region *r, struct shim_waiter *w);


#endif /* SHIM_H */
