/* SPDX-License-Identifier: MIT */
/*
 * trace-find.h - where gmem-replay finds a trace given by name: the source
 * tree's traces/ folder, the installed one, then $GMEM_TRACES.
 */
#ifndef GMEM_BENCH_TRACE_FIND_H
#define GMEM_BENCH_TRACE_FIND_H

#include <stddef.h>

/* At most this many folders are searched (see trace_dirs()). */
#define TRACE_DIRS_MAX 3

/**
 * trace_dirs - The folders a trace name is looked up in, in order.
 * @dirs: receives up to TRACE_DIRS_MAX folder names (static strings or the
 *        environment's; valid until the environment changes).
 *
 * The build's source tree traces/ (when the program was built with
 * GMEM_SRC_TRACES_DIR), the installed $(pkgdatadir)/traces
 * (GMEM_PKG_TRACES_DIR), then $GMEM_TRACES when set and not empty.
 * Return: the number of folders stored in @dirs.
 */
int trace_dirs(const char *dirs[TRACE_DIRS_MAX]);

/**
 * trace_find - The file a --trace argument names.
 * @arg:    a path (it holds a '/' or ends in ".gz": used as it is) or a
 *          trace name such as "gpt2-train" (NAME.trace.gz in trace_dirs()).
 * @path:   receives the file's path.
 * @len:    bytes in @path.
 * @err:    on failure, one line naming every folder that was searched.
 * @errlen: bytes in @err.
 *
 * The first folder holding NAME.trace.gz wins, readable or not (the
 * parser then says why it cannot be read).
 * Return: 0; -ENOENT no folder holds the trace; -ENAMETOOLONG a path does
 *         not fit in @path.
 */
int trace_find(const char *arg, char *path, size_t len, char *err,
	       size_t errlen);

#endif /* GMEM_BENCH_TRACE_FIND_H */
