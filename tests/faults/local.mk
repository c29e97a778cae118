# SPDX-License-Identifier: MIT
# The fault-injection suite: whole migrations (gmem-replay + gmem-migrate in
# two network namespaces) with a fault injected in each, every one ending in
# an exact verdict. faultproxy is its byte-mangling TCP proxy.
check_PROGRAMS += tests/faults/faultproxy
tests_faults_faultproxy_SOURCES = tests/faults/faultproxy.c $(CLI_SOURCES)
tests_faults_faultproxy_CPPFLAGS = $(CLI_CPPFLAGS)
dist_check_SCRIPTS += tests/faults/run.sh
TESTS += tests/faults/run.sh
