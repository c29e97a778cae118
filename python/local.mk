# SPDX-License-Identifier: MIT
# gmem-trace-capture: records a PyTorch job's dirty-page trace for
# gmem-replay. The module python/gmem_trace.py is the library (TraceCapture)
# and the program; the installed script finds it in $(pythondir) (a plain
# file there: Python compiles it when it is first imported).
EXTRA_DIST += python/gmem-trace-capture.in
# The gmem package (gmem.torch: an ordinary PyTorch job made movable),
# installed as plain files under $(pythondir)/gmem.
gmem_py = python/gmem/__init__.py python/gmem/_lib.py \
	python/gmem/control.py python/gmem/torch.py
if HAVE_PYTHON
gmemtracedir = $(pythondir)
dist_gmemtrace_DATA = python/gmem_trace.py
bin_SCRIPTS += python/gmem-trace-capture
CLEANFILES += python/gmem-trace-capture
python/gmem-trace-capture: $(srcdir)/python/gmem-trace-capture.in Makefile
	$(AM_V_GEN)$(MKDIR_P) python && \
	sed -e 's|@PYTHON[@]|$(PYTHON)|g' -e 's|@pythondir[@]|$(pythondir)|g' \
		$(srcdir)/python/gmem-trace-capture.in >$@.tmp && \
	chmod +x $@.tmp && mv $@.tmp $@
gmempkgdir = $(pythondir)/gmem
dist_gmempkg_DATA = $(gmem_py)
else
EXTRA_DIST += python/gmem_trace.py $(gmem_py)
endif
# Its unit tests and the round trip through gmem-replay (skip without
# python3).
EXTRA_DIST += tests/trace-capture.py
dist_check_SCRIPTS += tests/trace-capture.sh
TESTS += tests/trace-capture.sh
# The gmem package's torch-free parts (skip without python3).
EXTRA_DIST += tests/python-gmem.py
dist_check_SCRIPTS += tests/python-gmem.sh
TESTS += tests/python-gmem.sh
# A PyTorch job migrated post-copy and stop-and-copy, and the example it
# runs (skips without PyTorch or a GPU).
EXTRA_DIST += bench/torch-migrate examples/torch-migrate/README.md \
	examples/torch-migrate/train.py
dist_check_SCRIPTS += tests/torch-migrate.sh
TESTS += tests/torch-migrate.sh
