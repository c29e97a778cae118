/* SPDX-License-Identifier: MIT */
/*
 * qmp.h - a client of QEMU's QMP monitor (JSON over a Unix socket): the
 * greeting and qmp_capabilities handshake, commands matched to their
 * replies by id, asynchronous events set aside.
 */
#ifndef GMEM_PAGER_QMP_H
#define GMEM_PAGER_QMP_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct qmp {
	int fd;
	int wait_ms;            /* for each reply; -1 forever */
	uint32_t next_id;
	json_object *version;   /* the greeting's QMP.version.qemu */
	char *buf;              /* bytes read and not parsed yet */
	size_t len;
	char error[256];        /* why the last call failed */
};

/*
 * Connects to the socket at @path, retrying for up to @wait_ms (-1 forever)
 * while it does not exist or refuses (QEMU creates it late), reads the
 * greeting and leaves capabilities negotiation. Replies must come within
 * @wait_ms. Returns 0 or -errno with q->error set.
 */
int qmp_open(struct qmp *q, const char *path, int wait_ms);
/*
 * Runs @cmd with @args (consumed; may be NULL) and sets *@ret to the
 * reply's "return" (release with json_object_put). Events read meanwhile
 * are dropped. Returns 0; -EREMOTEIO QEMU answered with an error (its
 * class and text in q->error); -ETIMEDOUT; -ECONNRESET; -EPROTO not QMP.
 */
int qmp_cmd(struct qmp *q, const char *cmd, json_object *args,
	    json_object **ret);
/* qmp_cmd() that drops the reply. */
int qmp_run(struct qmp *q, const char *cmd, json_object *args);
void qmp_close(struct qmp *q);

#endif
