# SPDX-License-Identifier: MIT
# make check: criterion unit tests (one binary per area) and shell tests of
# several processes or network namespaces (exit 77 = skipped, with a reason).
TEST_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) \
	-DGMEM_TRACES_DIR='"$(abs_top_srcdir)/../shared/traces"'
TEST_LDADD = libgmem/libgmem.la $(CRITERION_LIBS)
# Verbosity 1 makes criterion name each skipped test and its reason.
AM_TESTS_ENVIRONMENT = top_builddir='$(abs_top_builddir)'; \
	top_srcdir='$(abs_top_srcdir)'; CRITERION_VERBOSITY_LEVEL=1; \
	export top_builddir top_srcdir CRITERION_VERBOSITY_LEVEL;

if HAVE_CRITERION
check_PROGRAMS += tests/test-region tests/test-fault
TESTS += tests/test-region tests/test-fault
tests_test_region_SOURCES = tests/test-region.c tests/helpers.c tests/helpers.h
tests_test_region_CFLAGS = $(TEST_CFLAGS)
tests_test_region_LDADD = $(TEST_LDADD)
tests_test_fault_SOURCES = tests/test-fault.c tests/helpers.c tests/helpers.h
tests_test_fault_CFLAGS = $(TEST_CFLAGS)
tests_test_fault_LDADD = $(TEST_LDADD)
# The trace parser of gmem-replay, compiled in directly.
check_PROGRAMS += tests/test-trace
TESTS += tests/test-trace
tests_test_trace_SOURCES = tests/test-trace.c bench/trace.c bench/trace.h
tests_test_trace_CFLAGS = $(TEST_CFLAGS)
tests_test_trace_LDADD = $(CRITERION_LIBS) $(ZLIB_LIBS)
endif

# gmem-replay's control socket: query, pause, resume, verify, quit (socat).
dist_check_SCRIPTS += tests/replay-control.sh
TESTS += tests/replay-control.sh
