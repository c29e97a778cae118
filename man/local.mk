# SPDX-License-Identifier: MIT
# Man pages: the two programs and an overview of the API.
dist_man1_MANS = man/gmem-migrate.1 man/gmem-pager.1
dist_man3_MANS = man/gmem.3
