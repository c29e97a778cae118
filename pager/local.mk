# SPDX-License-Identifier: MIT
# The programs: gmem-pager (page server) and gmem-migrate (live migration).
