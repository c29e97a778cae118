# SPDX-License-Identifier: MIT
# libgmem.so: regions, the userfaultfd fault engine, page sources, dirty log,
# transports and the migration engine. Internal headers stay here.
# The bitmap both libraries use, compiled once.
noinst_LTLIBRARIES += libgmem/libbitmap.la
libgmem_libbitmap_la_SOURCES = libgmem/bitmap.h libgmem/bitmap.c
libgmem_libbitmap_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/libgmem

lib_LTLIBRARIES += libgmem/libgmem.la
include_HEADERS = libgmem/include/gmem.h
libgmem_libgmem_la_SOURCES = \
	libgmem/internal.h libgmem/syscall.h libgmem/compat.h \
	libgmem/sort.h libgmem/threads.h libgmem/probes.h \
	libgmem/digest.c
# The region and its fault engine: userfaultfd, exactly-once installation,
# page sources, regions of other processes.
libgmem_libgmem_la_SOURCES += \
	libgmem/region/engine.h libgmem/region/region.c \
	libgmem/region/external.c libgmem/region/share.c \
	libgmem/region/features.c libgmem/region/uffd.c \
	libgmem/region/install.c libgmem/region/fault.c \
	libgmem/region/blocktime.c \
	libgmem/region/page-source.c libgmem/region/attach.c \
	libgmem/region/pci.c libgmem/region/thp.c libgmem/region/prealloc.c \
	libgmem/region/fill.c
# The dirty log and its backends.
libgmem_libgmem_la_SOURCES += \
	libgmem/dirty/dirty.h libgmem/dirty/dirty.c libgmem/dirty/async.c \
	libgmem/dirty/sync.c libgmem/dirty/softdirty.c
# The wire protocol (libgmem/wire/PROTOCOL.md): frames, AUTH, encryption.
libgmem_libgmem_la_SOURCES += \
	libgmem/wire/proto.h libgmem/wire/proto.c \
	libgmem/wire/frame.h libgmem/wire/frame.c \
	libgmem/wire/auth.h libgmem/wire/auth.c \
	libgmem/wire/seal.h libgmem/wire/seal.c
# Transports: TCP (io_uring) and RDMA (or its stub, below).
libgmem_libgmem_la_SOURCES += \
	libgmem/transport/transport.h libgmem/transport/tcp.c \
	libgmem/transport/rdma.h libgmem/transport/rdma-ops.c
# The page server: the migration source's side.
libgmem_libgmem_la_SOURCES += \
	libgmem/page-server/server.h libgmem/page-server/server.c \
	libgmem/page-server/accept.c libgmem/page-server/push.c \
	libgmem/page-server/recover.c
# The remote source: the destination's side, fetching from a page server.
libgmem_libgmem_la_SOURCES += \
	libgmem/remote-source/remote.h libgmem/remote-source/remote.c \
	libgmem/remote-source/connect.c libgmem/remote-source/fetch.c \
	libgmem/remote-source/recover.c libgmem/remote-source/reads.c
# The migration engine: outgoing (source host) and incoming (destination).
libgmem_libgmem_la_SOURCES += \
	libgmem/migrate/migrate.h libgmem/migrate/migrate.c \
	libgmem/migrate/outgoing.c libgmem/migrate/incoming.c
if HAVE_NUMA
libgmem_libgmem_la_SOURCES += libgmem/region/numa.c
else
libgmem_libgmem_la_SOURCES += libgmem/region/numa-stub.c
endif
libgmem_libgmem_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/libgmem
libgmem_libgmem_la_CFLAGS = $(AM_CFLAGS) \
	$(URING_CFLAGS) $(XXHASH_CFLAGS) $(ISAL_CFLAGS) $(SODIUM_CFLAGS) \
	$(CRYPTO_CFLAGS) $(NUMA_CFLAGS)
libgmem_libgmem_la_LIBADD = libgmem/libbitmap.la $(URING_LIBS) $(XXHASH_LIBS) $(ISAL_LIBS) \
	$(SODIUM_LIBS) $(CRYPTO_LIBS) $(NUMA_LIBS) -lpthread
libgmem_libgmem_la_LDFLAGS = -version-info $(GMEM_LT_VERSION) \
	-Wl,--version-script=$(srcdir)/libgmem/libgmem.map
# The RDMA transport, or its stub (-EOPNOTSUPP) without libibverbs.
if HAVE_RDMA
libgmem_libgmem_la_SOURCES += libgmem/transport/rdma.c
libgmem_libgmem_la_CFLAGS += $(RDMA_CFLAGS)
libgmem_libgmem_la_LIBADD += $(RDMA_LIBS)
else
libgmem_libgmem_la_SOURCES += libgmem/transport/rdma-stub.c
endif
EXTRA_libgmem_libgmem_la_DEPENDENCIES = libgmem/libgmem.map
EXTRA_DIST += libgmem/libgmem.map libgmem/wire/PROTOCOL.md
