// SPDX-License-Identifier: MIT
/*
 * uffd-accept.c - the receiving end of a VMM's hand-over (Firecracker's
 * external page-fault handler protocol, which libgmem-vmm.so speaks): one
 * message with a JSON list of guest memory mappings, the VMM's userfaultfd
 * by SCM_RIGHTS and, from libgmem-vmm.so, its /proc/PID/pagemap. A bad
 * list gets one "error: ..." line back on the socket and on stderr.
 * gmem-pager --uffd-handler and gmem-migrate dest --qmp share it.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmem.h>
#include <json-c/json.h>

#include "uffd-handler.h"

/* Firecracker sends at most a few hundred bytes per mapping. */
#define MSG_MAX (64 * 1024)

/* Says what went wrong on stderr and to the VMM, which may read it. */
static void vmm_error(const struct vmm_conn *c, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", program_invocation_short_name, text);
	n = dprintf(c->sock, "error: %s\n", text);
	(void)n; /* a VMM that went away needs no answer */
}

int listen_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "%s: %s: path too long\n",
			program_invocation_short_name, path);
		return -ENAMETOOLONG;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 1) < 0) {
		ret = -errno;
		fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name,
			path, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

void uffd_vmm_say(const struct vmm_conn *c, const char *line)
{
	ssize_t n = send(c->sock, line, strlen(line), MSG_NOSIGNAL);

	(void)n; /* a VMM that went away needs no answer */
}

/* One message: the JSON text (NUL-terminated into @buf), the userfaultfd
 * and, optionally, the VMM's pagemap fd. */
static int recv_list(struct vmm_conn *c, char *buf, size_t len)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len - 1 };
	int fds[2];
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(c->sock, &msg, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    (cm->cmsg_len == CMSG_LEN(sizeof(int)) ||
		     cm->cmsg_len == CMSG_LEN(2 * sizeof(int)))) {
			memcpy(fds, CMSG_DATA(cm), cm->cmsg_len - CMSG_LEN(0));
			c->uffd = fds[0];
			if (cm->cmsg_len == CMSG_LEN(2 * sizeof(int)))
				c->pagemap = fds[1];
		}
	if (c->uffd < 0) {
		vmm_error(c, "no userfaultfd came with the mapping list "
			  "(send it by SCM_RIGHTS in the same message)");
		return -EPROTO;
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		vmm_error(c, "mapping list longer than %d bytes", MSG_MAX - 1);
		return -EPROTO;
	}
	return 0;
}

/* A non-negative integer member; page_size_kib is the older Firecracker
 * spelling of page_size. */
static int field_u64(const struct vmm_conn *c, json_object *o, uint32_t i,
		     const char *key, uint64_t *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v)) {
		if (strcmp(key, "page_size") == 0 &&
		    json_object_object_get_ex(o, "page_size_kib", &v) &&
		    json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) > 0) {
			*out = json_object_get_uint64(v) * 1024;
			return 0;
		}
		vmm_error(c, "mapping %u: no \"%s\"", i, key);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0) {
		vmm_error(c, "mapping %u: \"%s\" is not a non-negative integer",
			  i, key);
		return -EINVAL;
	}
	*out = json_object_get_uint64(v);
	return 0;
}

static int parse_list(struct vmm_conn *c, const char *text)
{
	enum json_tokener_error jerr;
	json_object *list = json_tokener_parse_verbose(text, &jerr);
	int ret = -EINVAL;
	size_t n;

	if (!list) {
		vmm_error(c, "mapping list is not JSON: %s",
			  json_tokener_error_desc(jerr));
		return -EINVAL;
	}
	n = json_object_is_type(list, json_type_array) ?
		    json_object_array_length(list) : 0;
	if (n < 1 || n > GMEM_UFFD_MAX_MAPPINGS) {
		vmm_error(c, "mapping list must be a JSON array of 1 to %d "
			  "mappings", GMEM_UFFD_MAX_MAPPINGS);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(list, i);
		struct gmem_uffd_mapping *m = &c->maps[i];

		if (!json_object_is_type(o, json_type_object)) {
			vmm_error(c, "mapping %u is not a JSON object", i);
			goto out;
		}
		if (field_u64(c, o, i, "base_host_virt_addr",
			      &m->base_host_virt_addr) ||
		    field_u64(c, o, i, "size", &m->size) ||
		    field_u64(c, o, i, "offset", &m->offset) ||
		    field_u64(c, o, i, "page_size", &m->page_size))
			goto out;
	}
	c->nr_maps = n;
	ret = 0;
out:
	json_object_put(list);
	return ret;
}

int uffd_vmm_adopt(struct vmm_conn *c, struct gmem_region **r)
{
	int ret = gmem_region_adopt_uffd(c->uffd, c->maps, c->nr_maps, r);

	if (ret == -EINVAL)
		vmm_error(c, "mapping list rejected: every mapping needs a "
			  "page_size of 4096 or 2097152 (the same for all), "
			  "a size > 0 and base_host_virt_addr, size and offset "
			  "multiples of it, and no two mappings may share an "
			  "address or an offset");
	else if (ret < 0)
		vmm_error(c, "the fd sent is not a userfaultfd: %s",
			  strerror(-ret));
	if (ret == 0 && c->pagemap >= 0) {
		ret = gmem_region_adopt_pagemap(*r, c->pagemap);
		if (ret < 0)
			vmm_error(c, "the second fd sent is not a pagemap: %s",
				  strerror(-ret));
	}
	return ret;
}

int uffd_vmm_accept(const char *sock_path, int wait_ms, FILE *log,
		    struct vmm_conn *c)
{
	struct pollfd pfd = { .events = POLLIN };
	char *buf = malloc(MSG_MAX);
	int ret;

	pfd.fd = listen_unix(sock_path);
	if (pfd.fd < 0 || !buf) {
		ret = pfd.fd < 0 ? pfd.fd : -ENOMEM;
		goto out;
	}
	fprintf(log, "%s: waiting for a VMM on %s\n",
		program_invocation_short_name, sock_path);
	fflush(log);
	ret = poll(&pfd, 1, wait_ms);
	c->sock = ret > 0 ? accept4(pfd.fd, NULL, NULL, SOCK_CLOEXEC) : -1;
	if (c->sock < 0) {
		ret = ret == 0 ? -ETIMEDOUT : -errno;
		fprintf(stderr, "%s: %s: accept: %s\n",
			program_invocation_short_name, sock_path,
			strerror(-ret));
		goto out;
	}
	ret = recv_list(c, buf, MSG_MAX);
	if (ret == 0)
		ret = parse_list(c, buf);
out:
	free(buf);
	if (pfd.fd >= 0)
		close(pfd.fd);
	unlink(sock_path);
	return ret;
}

