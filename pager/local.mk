# SPDX-License-Identifier: MIT
# The programs: gmem-pager (page server) and gmem-migrate (live migration).
bin_PROGRAMS += pager/gmem-pager
pager_gmem_pager_SOURCES = pager/gmem-pager.c \
	pager/uffd-handler.c pager/uffd-accept.c pager/uffd-handler.h \
	pager/uffd-dirty.c \
	pager/transport-opt.c pager/transport-opt.h pager/key.c pager/key.h \
	$(CLI_SOURCES)
pager_gmem_pager_CPPFLAGS = $(CLI_CPPFLAGS)
pager_gmem_pager_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
pager_gmem_pager_LDADD = libgmem/libgmem.la $(JSONC_LIBS)
bin_PROGRAMS += pager/gmem-migrate
pager_gmem_migrate_SOURCES = pager/gmem-migrate.c pager/migrate-run.c \
	pager/migrate-cli.h pager/report.c pager/control.c pager/control.h \
	pager/qmp.c pager/qmp.h pager/migrate-qmp.c pager/migrate-qmp.h \
	pager/uffd-accept.c pager/uffd-handler.h \
	pager/key.c pager/key.h pager/transport-opt.c pager/transport-opt.h \
	$(CLI_SOURCES)
pager_gmem_migrate_CPPFLAGS = $(CLI_CPPFLAGS)
pager_gmem_migrate_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
pager_gmem_migrate_LDADD = libgmem/libgmem.la $(JSONC_LIBS)
