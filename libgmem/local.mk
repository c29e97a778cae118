# SPDX-License-Identifier: MIT
# libgmem.so: regions, the userfaultfd fault engine, page sources, dirty log,
# transports and the migration engine. Internal headers stay here.
lib_LTLIBRARIES += libgmem/libgmem.la
include_HEADERS = libgmem/include/gmem.h
libgmem_libgmem_la_SOURCES = \
	libgmem/internal.h libgmem/syscall.h libgmem/compat.h \
	libgmem/bitmap.h libgmem/bitmap.c \
	libgmem/features.c \
	libgmem/uffd.c \
	libgmem/region.c \
	libgmem/install.c \
	libgmem/fault.c \
	libgmem/source.c \
	libgmem/attach.c \
	libgmem/digest.c \
	libgmem/proto.h libgmem/proto.c \
	libgmem/transport/transport.h libgmem/transport/tcp.c \
	libgmem/wire.h libgmem/wire.c \
	libgmem/auth.h libgmem/auth.c \
	libgmem/seal.h libgmem/seal.c \
	libgmem/server.c \
	libgmem/server.h \
	libgmem/server-accept.c \
	libgmem/server-push.c \
	libgmem/remote.h libgmem/remote.c libgmem/remote-connect.c \
	libgmem/source-remote.c \
	libgmem/recover.c libgmem/server-recover.c \
	libgmem/remote-rdma.c libgmem/transport/rdma.h \
	libgmem/dirty.h libgmem/dirty.c libgmem/dirty-async.c \
	libgmem/dirty-sync.c libgmem/dirty-softdirty.c \
	libgmem/share.c libgmem/external.c \
	libgmem/migrate.h libgmem/migrate.c \
	libgmem/migrate-source.c libgmem/migrate-dest.c \
	libgmem/pci.c libgmem/thp.c libgmem/prealloc.c
if HAVE_NUMA
libgmem_libgmem_la_SOURCES += libgmem/numa.c
else
libgmem_libgmem_la_SOURCES += libgmem/numa-stub.c
endif
libgmem_libgmem_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/libgmem
libgmem_libgmem_la_CFLAGS = $(AM_CFLAGS) \
	$(URING_CFLAGS) $(XXHASH_CFLAGS) $(ISAL_CFLAGS) $(SODIUM_CFLAGS) \
	$(NUMA_CFLAGS)
libgmem_libgmem_la_LIBADD = $(URING_LIBS) $(XXHASH_LIBS) $(ISAL_LIBS) \
	$(SODIUM_LIBS) $(NUMA_LIBS) -lpthread
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
EXTRA_DIST += libgmem/libgmem.map
