// SPDX-License-Identifier: MIT
/*
 * uffd-handler.c - gmem-pager --uffd-handler: a VMM connects to a Unix
 * socket and sends, in one message, a JSON list of its guest memory
 * mappings with its userfaultfd by SCM_RIGHTS (Firecracker's external
 * page-fault handler protocol). The handler adopts the userfaultfd
 * (gmem_region_adopt_uffd()) and serves the VMM's faults from a snapshot
 * file or a remote page server. A second fd in that message, the VMM's
 * /proc/PID/pagemap (libgmem-vmm.so sends it), makes the dirty log of its
 * memory work (--dirty-log). A bad list gets one "error: ..." line back
 * on the socket and on stderr; nothing is installed. Once faults are
 * served the VMM reads "ok", and "done" when every page is there and it
 * may let its userfaultfd go (Firecracker ignores both lines).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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

struct vmm_conn {
	int sock;
	int uffd;
	int pagemap; /* -1: the VMM sent none */
	struct gmem_uffd_mapping maps[GMEM_UFFD_MAX_MAPPINGS];
	uint32_t nr_maps;
};

/* Says what went wrong on stderr and to the VMM, which may read it. */
static void vmm_error(const struct vmm_conn *c, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "gmem-pager: %s\n", text);
	n = dprintf(c->sock, "error: %s\n", text);
	(void)n; /* a VMM that went away needs no answer */
}

int listen_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "gmem-pager: %s: path too long\n", path);
		return -ENAMETOOLONG;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 1) < 0) {
		ret = -errno;
		fprintf(stderr, "gmem-pager: %s: %s\n", path, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

/* A line for the VMM, which may be gone: no SIGPIPE. */
static void vmm_say(const struct vmm_conn *c, const char *line)
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

static int adopt(struct vmm_conn *c, struct gmem_region **r)
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

/* The remote end must serve an image of exactly this geometry. */
static int remote_source(const struct uffd_handler_opts *o,
			 struct gmem_region *r, struct gmem_remote **rm,
			 struct gmem_source **src)
{
	struct gmem_remote_params p = {
		.connect_ms = o->wait_ms, .key = o->key, .key_len = o->key_len,
	};
	int64_t ret = gmem_remote_connect(o->connect, &p, rm);

	if (ret < 0) {
		fprintf(stderr, "gmem-pager: connect %s: %s\n", o->connect,
			*rm ? gmem_remote_error(*rm) : strerror(-ret));
		return ret;
	}
	if (gmem_remote_page_size(*rm) != gmem_region_page_size(r) ||
	    gmem_remote_nr_pages(*rm) != gmem_region_nr_pages(r)) {
		fprintf(stderr, "gmem-pager: %s serves %llu pages of %u bytes; "
			"the VMM's mappings span %llu pages of %u bytes\n",
			o->connect,
			(unsigned long long)gmem_remote_nr_pages(*rm),
			gmem_remote_page_size(*rm),
			(unsigned long long)gmem_region_nr_pages(r),
			gmem_region_page_size(r));
		return -EINVAL;
	}
	ret = gmem_remote_precopy(*rm, r, o->wait_ms);
	if (ret >= 0)
		ret = gmem_remote_source(*rm, src);
	if (ret < 0)
		fprintf(stderr, "gmem-pager: %s: %s %s\n", o->connect,
			strerror(-ret), gmem_remote_error(*rm));
	return ret;
}

static int file_source(const char *path, struct gmem_source **src)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "gmem-pager: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	ret = gmem_source_file(fd, 0, src);
	close(fd);
	if (ret < 0)
		fprintf(stderr, "gmem-pager: %s: %s\n", path, strerror(-ret));
	return ret;
}

/* Until the VMM closes its socket; each SIGUSR1 on @sig_fd (>= 0 with
 * --dirty-log) prints a dirty log epoch. */
static int serve_snapshot(struct vmm_conn *c, struct gmem_region *r,
			  int sig_fd)
{
	struct pollfd pfd[2] = { { .fd = c->sock, .events = POLLIN },
				 { .fd = sig_fd, .events = POLLIN } };
	char byte;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[1].revents && uffd_dirty_report(r, sig_fd) < 0)
			return -EIO;
		if (pfd[0].revents && read(c->sock, &byte, 1) <= 0)
			return 0;
	}
}

/* Serving ends when the VMM closes its socket or, with a page server,
 * once every page is present and verified. */
static int serve_vmm(const struct uffd_handler_opts *o, struct vmm_conn *c,
		     struct gmem_region *r, struct gmem_remote *rm, int sig_fd)
{
	struct gmem_fault_stats st;
	int ret = 0;

	printf("gmem-pager: serving %u mappings, %llu pages of %u bytes\n",
	       c->nr_maps, (unsigned long long)gmem_region_nr_pages(r),
	       gmem_region_page_size(r));
	fflush(stdout);
	vmm_say(c, "ok\n");
	if (rm) {
		ret = gmem_remote_wait(rm, -1);
		if (ret < 0)
			fprintf(stderr, "gmem-pager: %s: %s %s\n", o->connect,
				strerror(-ret), gmem_remote_error(rm));
		else
			vmm_say(c, "done\n");
	} else {
		ret = serve_snapshot(c, r, sig_fd);
	}
	/* Joining the handlers makes the counters final. */
	gmem_region_detach(r);
	gmem_region_fault_stats(r, &st);
	printf("gmem-pager: VMM done: faults %llu pages installed %llu "
	       "errors %llu%s\n", (unsigned long long)st.faults,
	       (unsigned long long)st.pages_installed,
	       (unsigned long long)st.errors,
	       rm && !ret ? ", digests equal" : "");
	return ret;
}

/* Waits for the VMM's connection and its mapping list. */
static int accept_vmm(const struct uffd_handler_opts *o, struct vmm_conn *c)
{
	struct pollfd pfd = { .events = POLLIN };
	char *buf = malloc(MSG_MAX);
	int ret;

	pfd.fd = listen_unix(o->sock_path);
	if (pfd.fd < 0 || !buf) {
		ret = pfd.fd < 0 ? pfd.fd : -ENOMEM;
		goto out;
	}
	printf("gmem-pager: waiting for a VMM on %s\n", o->sock_path);
	fflush(stdout);
	ret = poll(&pfd, 1, o->wait_ms);
	c->sock = ret > 0 ? accept4(pfd.fd, NULL, NULL, SOCK_CLOEXEC) : -1;
	if (c->sock < 0) {
		ret = ret == 0 ? -ETIMEDOUT : -errno;
		fprintf(stderr, "gmem-pager: %s: accept: %s\n", o->sock_path,
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
	unlink(o->sock_path);
	return ret;
}

int uffd_handler_run(const struct uffd_handler_opts *o)
{
	struct vmm_conn c = { .sock = -1, .uffd = -1, .pagemap = -1 };
	struct gmem_region *r = NULL;
	struct gmem_remote *rm = NULL;
	struct gmem_source *src = NULL;
	int sig_fd = -1, ret = 0;

	if (o->dirty_log)
		ret = sig_fd = uffd_dirty_signal_fd();
	if (ret >= 0)
		ret = accept_vmm(o, &c);
	if (ret == 0)
		ret = adopt(&c, &r);
	if (ret == 0)
		ret = o->file ? file_source(o->file, &src)
			      : remote_source(o, r, &rm, &src);
	if (ret == 0) {
		ret = gmem_region_attach(r, src, NULL);
		if (ret < 0)
			fprintf(stderr, "gmem-pager: attach: %s\n",
				strerror(-ret));
	}
	if (ret == 0 && o->dirty_log)
		ret = uffd_dirty_start(r);
	if (ret == 0)
		ret = serve_vmm(o, &c, r, rm, sig_fd);
	gmem_source_destroy(src);
	gmem_remote_destroy(rm);
	gmem_region_destroy(r);
	if (c.uffd >= 0)
		close(c.uffd);
	if (c.pagemap >= 0)
		close(c.pagemap);
	if (sig_fd >= 0)
		close(sig_fd);
	if (c.sock >= 0)
		close(c.sock);
	return ret < 0 ? 1 : 0;
}
