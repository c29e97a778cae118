// SPDX-License-Identifier: MIT
/*
 * qmp.c - see qmp.h. QEMU ends every message with CRLF and writes none
 * inside one, so messages are read as lines; an event may come before any
 * reply, and a reply is the one whose "id" is the command's.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"

#define QMP_MSG_MAX (1U << 20) /* query-* replies stay far below */

static int qmp_fail(struct qmp *q, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
	return ret;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	ret = -errno;
	close(fd);
	return ret;
}

/* The next message, a JSON object, into *@out. */
static int read_msg(struct qmp *q, json_object **out)
{
	int64_t deadline = q->wait_ms < 0 ? -1 : mono_ms() + q->wait_ms;

	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int left = deadline < 0 ? -1 : (int)(deadline - mono_ms());
		ssize_t n;

		if (nl) {
			*nl = '\0';
			*out = json_tokener_parse(q->buf);
			q->len -= nl + 1 - q->buf;
			memmove(q->buf, nl + 1, q->len);
			if (!*out || !json_object_is_type(*out, json_type_object)) {
				json_object_put(*out);
				return qmp_fail(q, -EPROTO, "not a QMP message");
			}
			return 0;
		}
		if (q->len == QMP_MSG_MAX)
			return qmp_fail(q, -EMSGSIZE, "a message over %u bytes",
					QMP_MSG_MAX);
		if (deadline >= 0 && left <= 0)
			return qmp_fail(q, -ETIMEDOUT, "no answer in %d ms",
					q->wait_ms);
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return qmp_fail(q, -errno, "poll: %s", strerror(errno));
		if (!pfd.revents)
			continue;
		n = read(q->fd, q->buf + q->len, QMP_MSG_MAX - q->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qmp_fail(q, -errno, "read: %s", strerror(errno));
		if (n == 0)
			return qmp_fail(q, -ECONNRESET, "QEMU closed the monitor");
		q->len += n;
	}
}

static int send_all(struct qmp *q, const char *text)
{
	size_t len = strlen(text);

	while (len) {
		ssize_t n = send(q->fd, text, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qmp_fail(q, -errno, "write: %s", strerror(errno));
		text += n;
		len -= n;
	}
	return 0;
}

int qmp_cmd(struct qmp *q, const char *cmd, json_object *args,
	    json_object **ret)
{
	json_object *req = json_object_new_object(), *msg = NULL, *v, *e;
	uint32_t id = ++q->next_id;
	int err;

	*ret = NULL;
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	json_object_object_add(req, "id", json_object_new_int64(id));
	err = send_all(q, json_object_to_json_string_ext(
				  req, JSON_C_TO_STRING_PLAIN));
	json_object_put(req);
	while (!err) {
		err = read_msg(q, &msg);
		if (err)
			break;
		/* Events and late replies to other ids are not ours. */
		if (json_object_object_get_ex(msg, "id", &v) &&
		    json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) == id) {
			if (json_object_object_get_ex(msg, "return", &v)) {
				*ret = json_object_get(v);
			} else if (json_object_object_get_ex(msg, "error", &e)) {
				json_object *c = NULL, *d = NULL;

				json_object_object_get_ex(e, "class", &c);
				json_object_object_get_ex(e, "desc", &d);
				err = qmp_fail(q, -EREMOTEIO, "%s: %s%s%s", cmd,
					       d ? json_object_get_string(d) :
						   "error",
					       c ? " " : "",
					       c ? json_object_get_string(c) : "");
			} else {
				err = qmp_fail(q, -EPROTO, "%s: a reply with "
					       "neither return nor error", cmd);
			}
			json_object_put(msg);
			return err;
		}
		json_object_put(msg);
	}
	return err;
}

int qmp_run(struct qmp *q, const char *cmd, json_object *args)
{
	json_object *ret;
	int err = qmp_cmd(q, cmd, args, &ret);

	json_object_put(ret);
	return err;
}

int qmp_open(struct qmp *q, const char *path, int wait_ms)
{
	int64_t deadline = wait_ms < 0 ? -1 : mono_ms() + wait_ms;
	const struct timespec tick = { .tv_nsec = 50000000L };
	json_object *greet = NULL, *v;
	int ret;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	q->wait_ms = wait_ms;
	q->buf = malloc(QMP_MSG_MAX);
	if (!q->buf)
		return qmp_fail(q, -ENOMEM, "out of memory");
	for (;;) {
		q->fd = try_connect(path);
		if (q->fd >= 0)
			break;
		if ((q->fd != -ENOENT && q->fd != -ECONNREFUSED) ||
		    (deadline >= 0 && mono_ms() >= deadline))
			return qmp_fail(q, q->fd, "%s: %s", path,
					strerror(-q->fd));
		nanosleep(&tick, NULL);
	}
	ret = read_msg(q, &greet);
	if (ret == 0 && (!json_object_object_get_ex(greet, "QMP", &v) ||
			 !json_object_object_get_ex(v, "version", &v) ||
			 !json_object_object_get_ex(v, "qemu", &v)))
		ret = qmp_fail(q, -EPROTO, "%s: no QMP greeting", path);
	if (ret == 0)
		q->version = json_object_get(v);
	json_object_put(greet);
	if (ret == 0)
		ret = qmp_run(q, "qmp_capabilities", NULL);
	return ret;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	json_object_put(q->version);
	q->version = NULL;
	free(q->buf);
	q->buf = NULL;
}
