/* SPDX-License-Identifier: MIT */
/*
 * migrate-qmp.h - gmem-migrate --qmp: the workload is an unmodified QEMU
 * whose guest RAM is a shared memory backend. QMP pauses it (stop),
 * moves its device state (QEMU's own migration with x-ignore-shared, to
 * --qemu-uri) and resumes it (cont); gmem moves the backend's pages, which
 * the destination QEMU's libgmem-vmm.so hands over on --uffd-socket.
 */
#ifndef GMEM_PAGER_MIGRATE_QMP_H
#define GMEM_PAGER_MIGRATE_QMP_H

#include <json-c/json.h>
#include <stdbool.h>

#include "migrate-cli.h"
#include "qmp.h"
#include "uffd-handler.h"

struct qemu_vm {
	const struct migrate_opts *o;
	struct qmp q;
	struct vmm_conn vc;   /* dest: libgmem-vmm.so's hand-over */
	json_object *facts;   /* what preflight found: version, memdev, size */
	char error[256];      /* why the last call failed */
};

/*
 * Preflight and the region. Source: the QEMU runs, offers x-ignore-shared,
 * and its backend (--memdev, or its one shared memdev) is mapped here from
 * its file. Dest: the hand-over arrives on --uffd-socket first (QEMU makes
 * it while starting, before its monitor is up), then the QEMU must wait in
 * -incoming defer with a backend of the handed-over size; it is set to
 * receive on --qemu-uri. Nothing is stopped. 0 or -errno, vm->error set.
 */
int qemu_vm_open(struct qemu_vm *vm, const struct migrate_opts *o,
		 struct gmem_region **r);
/* Source: stop, then QEMU's migration of its device state; the state blob
 * carries the source's preflight facts. A failed migration restarts the
 * QEMU here (cont). */
int qemu_vm_pause(struct qemu_vm *vm, void *state, size_t *len);
/* Dest: refuses another QEMU version, waits for the device state to have
 * loaded, then cont. */
int qemu_vm_resume(struct qemu_vm *vm, const void *state, size_t len);
/* After the migration (@ret its result): dest tells libgmem-vmm.so every
 * page is there; source quits its QEMU unless --keep-source. */
void qemu_vm_finish(struct qemu_vm *vm, int ret);
void qemu_vm_close(struct qemu_vm *vm);

#endif
