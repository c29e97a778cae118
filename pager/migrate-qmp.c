// SPDX-License-Identifier: MIT
/*
 * migrate-qmp.c - see migrate-qmp.h. QEMU's device state does not fit
 * gmem's switchover message (ROMs and devices: some 300 KiB for a small
 * pc guest against 64 KiB), so it travels on QEMU's own migration
 * channel, which x-ignore-shared keeps free of the shared backend; gmem's
 * state blob carries the source's preflight facts instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "migrate-qmp.h"

static int vm_fail(struct qemu_vm *vm, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->error, sizeof(vm->error), fmt, ap);
	va_end(ap);
	return ret;
}

/* A QMP call whose failure is QMP's words. */
static int vm_cmd(struct qemu_vm *vm, const char *cmd, json_object *args,
		  json_object **ret)
{
	int err = qmp_cmd(&vm->q, cmd, args, ret);

	return err ? vm_fail(vm, err, "%s", vm->q.error) : 0;
}

static int vm_run(struct qemu_vm *vm, const char *cmd, json_object *args)
{
	json_object *ret = NULL;
	int err = vm_cmd(vm, cmd, args, &ret);

	json_object_put(ret);
	return err;
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ?
		       json_object_get_string(v) : "";
}

/* "7.2.22 (Debian 1:7.2+dfsg-7)" from query-version. */
static int preflight_version(struct qemu_vm *vm)
{
	json_object *ret, *q = NULL;
	char text[192];
	int err = vm_cmd(vm, "query-version", NULL, &ret);

	if (err)
		return err;
	json_object_object_get_ex(ret, "qemu", &q);
	snprintf(text, sizeof(text), "%lld.%lld.%lld (%s)",
		 (long long)json_int(q, "major"), (long long)json_int(q, "minor"),
		 (long long)json_int(q, "micro"), str_of(ret, "package"));
	json_object_object_add(vm->facts, "version",
			       json_object_new_string(text));
	json_object_put(ret);
	return 0;
}

static int preflight_status(struct qemu_vm *vm)
{
	json_object *ret;
	const char *want = vm->o->dest ? "inmigrate" : NULL;
	const char *status;
	int err = vm_cmd(vm, "query-status", NULL, &ret);

	if (err)
		return err;
	status = str_of(ret, "status");
	if (want && strcmp(status, want))
		err = vm_fail(vm, -EINVAL, "QEMU is %s, not waiting for an "
			      "incoming migration (start it with -incoming "
			      "defer)", status);
	else if (!want && strcmp(status, "running") &&
		 strcmp(status, "paused"))
		err = vm_fail(vm, -EINVAL, "QEMU is %s, not running or "
			      "paused", status);
	json_object_put(ret);
	return err;
}

/* Shared backends must stay out of QEMU's stream: x-ignore-shared. */
static int preflight_capability(struct qemu_vm *vm)
{
	json_object *ret;
	int err = vm_cmd(vm, "query-migrate-capabilities", NULL, &ret);
	size_t n = err ? 0 : json_object_array_length(ret);
	bool found = false;

	for (size_t i = 0; i < n; i++)
		if (!strcmp(str_of(json_object_array_get_idx(ret, i),
				   "capability"), "x-ignore-shared"))
			found = true;
	json_object_put(ret);
	if (!err && !found)
		err = vm_fail(vm, -EOPNOTSUPP, "QEMU has no x-ignore-shared "
			      "migration capability (QEMU 4.0 or later)");
	return err;
}

/* --memdev, or the one shared memdev; its id and size into the facts. */
static int preflight_memdev(struct qemu_vm *vm)
{
	const char *want = vm->o->memdev;
	json_object *ret, *pick = NULL, *v;
	int err = vm_cmd(vm, "query-memdev", NULL, &ret);
	size_t n = err ? 0 : json_object_array_length(ret);
	int shared = 0;

	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(ret, i);
		bool share = json_object_object_get_ex(m, "share", &v) &&
			     json_object_get_boolean(v);

		if (want ? !strcmp(str_of(m, "id"), want) : share) {
			pick = m;
			shared += share;
		}
	}
	if (err)
		return err;
	if (want && !pick)
		err = vm_fail(vm, -ENOENT, "QEMU has no memdev '%s'", want);
	else if (want && !shared)
		err = vm_fail(vm, -EINVAL, "memdev '%s' is not share=on", want);
	else if (!want && !shared)
		err = vm_fail(vm, -EINVAL, "QEMU has no shared memdev (a "
			      "memory-backend-file with share=on)");
	else if (!want && shared > 1)
		err = vm_fail(vm, -EINVAL, "QEMU has %d shared memdevs: "
			      "name one with --memdev", shared);
	if (!err) {
		json_object_object_add(vm->facts, "memdev",
				       json_object_new_string(str_of(pick, "id")));
		json_object_object_add(vm->facts, "size",
				       json_object_new_int64(json_int(pick, "size")));
	}
	json_object_put(ret);
	return err;
}

/* 1 if @path (a QOM path) backs one of QEMU's memory devices (pc-dimm,
 * nvdimm, virtio-mem): guest RAM at an address fixed by the machine; 0 if
 * not; -errno. */
static int memory_device(struct qemu_vm *vm, const char *path)
{
	json_object *ret, *data;
	int found = 0, err = vm_cmd(vm, "query-memory-devices", NULL, &ret);
	size_t n = err ? 0 : json_object_array_length(ret);

	for (size_t i = 0; i < n && !found; i++)
		found = json_object_object_get_ex(json_object_array_get_idx(ret, i),
						  "data", &data) &&
			!strcmp(str_of(data, "memdev"), path);
	json_object_put(ret);
	return err ? err : found;
}

/* 1 if device @dev's memdev property is the backend @want (QOM paths); 0
 * if not, or if it has none; -errno. */
static int device_backs(struct qemu_vm *vm, const char *dev, const char *want)
{
	json_object *args = json_object_new_object(), *link;
	int err;

	json_object_object_add(args, "path", json_object_new_string(dev));
	json_object_object_add(args, "property", json_object_new_string("memdev"));
	err = qmp_cmd(&vm->q, "qom-get", args, &link);
	if (err)
		return err == -EREMOTEIO ? 0 : vm_fail(vm, err, "%s", vm->q.error);
	err = !strcmp(json_object_get_string(link), want);
	json_object_put(link);
	return err;
}

/*
 * Refuses a backend that a device other than a memory device maps, such as
 * ivshmem-plain's PCI BAR: with x-ignore-shared QEMU checks an ignored
 * block's guest address as it loads RAM (migration/ram.c, "Mismatched
 * GPAs"), before the destination has its devices' state, where a BAR is
 * not mapped yet, so the destination would refuse the migration after the
 * source has stopped.
 */
static int preflight_mapping(struct qemu_vm *vm)
{
	static const char *const parents[] = { "/machine/peripheral",
					       "/machine/peripheral-anon" };
	char want[160];
	int err = 0;

	snprintf(want, sizeof(want), "/objects/%s", str_of(vm->facts, "memdev"));
	for (size_t p = 0; p < 2 && !err; p++) {
		json_object *args = json_object_new_object(), *list = NULL;
		size_t n;

		json_object_object_add(args, "path",
				       json_object_new_string(parents[p]));
		err = qmp_cmd(&vm->q, "qom-list", args, &list);
		if (err == -EREMOTEIO) { /* no such container */
			err = 0;
			continue;
		}
		if (err)
			return vm_fail(vm, err, "%s", vm->q.error);
		n = json_object_array_length(list);
		for (size_t i = 0; i < n && !err; i++) {
			json_object *child = json_object_array_get_idx(list, i);
			const char *type = str_of(child, "type");
			const char *name = str_of(child, "name");
			char path[320];

			if (strncmp(type, "child<", 6))
				continue;
			snprintf(path, sizeof(path), "%s/%s", parents[p], name);
			err = device_backs(vm, path, want);
			if (err == 1)
				err = memory_device(vm, want);
			else if (err == 0)
				continue;
			if (err == 1)
				err = 0;
			else if (err == 0)
				err = vm_fail(vm, -EINVAL, "memdev %s backs "
					      "device %s (%.*s), not guest RAM: "
					      "QEMU's x-ignore-shared cannot "
					      "skip a PCI BAR (the destination "
					      "checks its guest address before "
					      "it loads the device); give gmem "
					      "a machine, NUMA node or memory "
					      "device memdev",
					      str_of(vm->facts, "memdev"), name,
					      (int)strlen(type + 6) - 1, type + 6);
		}
		json_object_put(list);
	}
	return err;
}

static int set_ignore_shared(struct qemu_vm *vm)
{
	json_object *args = json_object_new_object();
	json_object *caps = json_object_new_array();
	json_object *cap = json_object_new_object();

	json_object_object_add(cap, "capability",
			       json_object_new_string("x-ignore-shared"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	json_object_array_add(caps, cap);
	json_object_object_add(args, "capabilities", caps);
	return vm_run(vm, "migrate-set-capabilities", args);
}

static int preflight(struct qemu_vm *vm)
{
	int err;

	err = qmp_open(&vm->q, vm->o->qmp, vm->o->params.wait_ms);
	if (err)
		return vm_fail(vm, err, "%s", vm->q.error);
	err = preflight_version(vm);
	if (!err)
		err = preflight_status(vm);
	if (!err)
		err = preflight_capability(vm);
	if (!err)
		err = preflight_memdev(vm);
	if (!err)
		err = preflight_mapping(vm);
	return err;
}

/* Source: the backend's file, mapped here; its pages are all present. */
static int source_region(struct qemu_vm *vm, struct gmem_region **r)
{
	struct gmem_region_params p = { .backing = GMEM_BACKING_FD };
	json_object *args = json_object_new_object(), *path = NULL;
	uint64_t size = json_int(vm->facts, "size");
	char obj[128];
	struct statfs sfs;
	struct stat sb;
	int fd, err;

	snprintf(obj, sizeof(obj), "/objects/%s",
		 str_of(vm->facts, "memdev"));
	json_object_object_add(args, "path", json_object_new_string(obj));
	json_object_object_add(args, "property",
			       json_object_new_string("mem-path"));
	err = vm_cmd(vm, "qom-get", args, &path);
	if (err)
		return vm_fail(vm, err, "memdev %s has no file (a "
			       "memory-backend-file is needed): %s",
			       str_of(vm->facts, "memdev"), vm->q.error);
	fd = open(json_object_get_string(path), O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) || fstatfs(fd, &sfs)) {
		err = vm_fail(vm, -errno, "%s: %s", json_object_get_string(path),
			      strerror(errno));
		goto out;
	}
	p.page_size = sfs.f_type == HUGETLBFS_MAGIC ? sfs.f_bsize : 4096;
	if ((uint64_t)sb.st_size < size || !size || size % p.page_size) {
		err = vm_fail(vm, -EINVAL, "%s: %lld bytes, memdev says %llu",
			      json_object_get_string(path),
			      (long long)sb.st_size, (unsigned long long)size);
		goto out;
	}
	p.fd = fd;
	p.nr_pages = size / p.page_size;
	err = gmem_region_create(&p, r);
	if (err)
		vm_fail(vm, err, "mapping %s: %s", json_object_get_string(path),
			strerror(-err));
out:
	if (fd >= 0)
		close(fd);
	json_object_put(path);
	return err;
}

/* Dest: the region libgmem-vmm.so hands over, before QEMU's monitor is
 * up; faults wait until the migration attaches its page source. */
static int dest_region(struct qemu_vm *vm, struct gmem_region **r)
{
	int err = uffd_vmm_accept(vm->o->uffd_socket, vm->o->params.wait_ms,
				  stderr, &vm->vc);

	if (!err)
		err = uffd_vmm_adopt(&vm->vc, r);
	if (err)
		return vm_fail(vm, err, "no guest memory handed over on %s "
			       "(libgmem-vmm.so in the QEMU?): %s",
			       vm->o->uffd_socket, strerror(-err));
	/* The hand-over's page size goes to the engine's geometry check. */
	uffd_vmm_say(&vm->vc, "ok\n");
	return 0;
}

static int set_incoming(struct qemu_vm *vm)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "uri",
			       json_object_new_string(vm->o->qemu_uri));
	return vm_run(vm, "migrate-incoming", args);
}

int qemu_vm_open(struct qemu_vm *vm, const struct migrate_opts *o,
		 struct gmem_region **r)
{
	int err;

	memset(vm, 0, sizeof(*vm));
	vm->o = o;
	vm->q.fd = -1;
	vm->vc.sock = vm->vc.uffd = vm->vc.pagemap = -1;
	vm->facts = json_object_new_object();
	err = o->dest ? dest_region(vm, r) : 0;
	if (!err)
		err = preflight(vm);
	if (!err && o->dest &&
	    (uint64_t)json_int(vm->facts, "size") != gmem_region_size(*r))
		err = vm_fail(vm, -EINVAL, "memdev %s is %lld bytes, the "
			      "mapping handed over %llu",
			      str_of(vm->facts, "memdev"),
			      (long long)json_int(vm->facts, "size"),
			      (unsigned long long)gmem_region_size(*r));
	if (!err && !o->dest)
		err = source_region(vm, r);
	if (!err)
		err = set_ignore_shared(vm);
	if (!err && o->dest)
		err = set_incoming(vm);
	return err;
}

/* Until QEMU's own migration ends: 0 completed, else -EIO with its
 * reason. It ends inside the freeze, so it is asked every millisecond (a
 * query costs a fraction of that). */
static int wait_migrated(struct qemu_vm *vm, json_object **done)
{
	const struct timespec tick = { .tv_nsec = 1000000L };
	int wait_ms = vm->o->params.wait_ms;

	for (long i = 0; wait_ms < 0 || i < wait_ms; i++) {
		const char *status;
		int err = vm_cmd(vm, "query-migrate", NULL, done);

		if (err)
			return err;
		status = str_of(*done, "status");
		if (!strcmp(status, "completed"))
			return 0;
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
			err = vm_fail(vm, -EIO, "QEMU's migration %s: %s",
				      status, str_of(*done, "error-desc"));
			json_object_put(*done);
			*done = NULL;
			return err;
		}
		json_object_put(*done);
		*done = NULL;
		nanosleep(&tick, NULL);
	}
	return vm_fail(vm, -ETIMEDOUT, "QEMU's migration did not end in %d ms",
		       wait_ms);
}

int qemu_vm_pause(struct qemu_vm *vm, void *state, size_t *len)
{
	json_object *args = json_object_new_object(), *done = NULL;
	const char *text;
	int err = vm_run(vm, "stop", NULL);

	json_object_object_add(args, "uri",
			       json_object_new_string(vm->o->qemu_uri));
	if (!err)
		err = vm_run(vm, "migrate", args);
	else
		json_object_put(args);
	if (!err)
		err = wait_migrated(vm, &done);
	if (err) {
		char why[sizeof(vm->error)];

		/* Nothing runs the guest elsewhere: it goes on here. */
		memcpy(why, vm->error, sizeof(why));
		if (vm_run(vm, "cont", NULL) == 0)
			vm_fail(vm, err, "%.200s (the source QEMU runs on)",
				why);
		else
			memcpy(vm->error, why, sizeof(why));
		return err;
	}
	json_object_object_add(vm->facts, "qemu_downtime_ms",
			       json_object_new_int64(json_int(done, "downtime")));
	json_object_put(done);
	text = json_object_to_json_string_ext(vm->facts, JSON_C_TO_STRING_PLAIN);
	if (strlen(text) > *len)
		return vm_fail(vm, -ENOSPC, "preflight facts too long");
	*len = strlen(text);
	memcpy(state, text, *len);
	return 0;
}

int qemu_vm_resume(struct qemu_vm *vm, const void *state, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *src = json_tokener_parse_ex(tok, state, len);
	json_object *done = NULL;
	int err = 0;

	json_tokener_free(tok);
	if (!src || strcmp(str_of(src, "version"),
			   str_of(vm->facts, "version")))
		err = vm_fail(vm, -EINVAL, "the source QEMU is %s, this one "
			      "%s: not resumed", src ?
			      str_of(src, "version") : "unknown",
			      str_of(vm->facts, "version"));
	if (!err)
		err = wait_migrated(vm, &done);
	json_object_put(done);
	if (!err)
		err = vm_run(vm, "cont", NULL);
	if (!err)
		json_object_object_add(vm->facts, "source",
				       json_object_get(src));
	json_object_put(src);
	return err;
}

void qemu_vm_finish(struct qemu_vm *vm, int ret)
{
	if (ret)
		return;
	if (vm->o->dest)
		uffd_vmm_say(&vm->vc, "done\n");
	else if (!vm->o->keep_source)
		vm_run(vm, "quit", NULL);
}

void qemu_vm_close(struct qemu_vm *vm)
{
	qmp_close(&vm->q);
	json_object_put(vm->facts);
	vm->facts = NULL;
	if (vm->vc.sock >= 0)
		close(vm->vc.sock);
	if (vm->vc.uffd >= 0)
		close(vm->vc.uffd);
	if (vm->vc.pagemap >= 0)
		close(vm->vc.pagemap);
}
