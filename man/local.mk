# SPDX-License-Identifier: MIT
# Man pages: the programs and an overview of the API.
dist_man1_MANS = man/gmem-migrate.1 man/gmem-pager.1 man/gmem-replay.1
if HAVE_PYTHON
dist_man1_MANS += man/gmem-trace-capture.1
else
EXTRA_DIST += man/gmem-trace-capture.1
endif
dist_man3_MANS = man/gmem.3
dist_man7_MANS = man/libgmem-vmm.7
