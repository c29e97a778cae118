# SPDX-License-Identifier: MIT
# make fuzz: two libFuzzer harnesses, built with clang apart from the rest,
# each run for FUZZ_SECONDS from its seed corpus:
# - fuzz/fuzz-wire: the frame parser, HELLO and AUTH (fuzz/fuzz-wire.c,
#   corpus fuzz/corpus/wire);
# - fuzz/fuzz-frames: the page server's and the destination's frame
#   handlers, the whole library over a fake transport in place of tcp.c
#   (fuzz/fuzz-frames.c, corpus fuzz/corpus/frames).
# New inputs go to fuzz/work-NAME, crashes to fuzz/crash-* (both in the
# build folder).
FUZZ_CC = clang
FUZZ_SECONDS = 60
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -D_GNU_SOURCE \
	-I$(srcdir)/libgmem -I$(srcdir)/libgmem/include
FUZZ_SRCS = $(srcdir)/fuzz/fuzz-wire.c $(srcdir)/libgmem/wire/frame.c \
	$(srcdir)/libgmem/wire/proto.c $(srcdir)/libgmem/wire/auth.c \
	$(srcdir)/libgmem/wire/seal.c
# fuzz-frames: the library as built, less its TCP transport (the harness's
# fake takes its place), with the RDMA and NUMA stubs: no device, no policy.
FUZZ_LIB_EXTRA = libgmem/bitmap.c libgmem/transport/rdma-stub.c \
	libgmem/region/numa-stub.c
EXTRA_DIST += fuzz/fuzz-wire.c fuzz/fuzz-frames.c fuzz/corpus

fuzz/fuzz-wire: $(FUZZ_SRCS) $(srcdir)/libgmem/wire/frame.h \
		$(srcdir)/libgmem/wire/proto.h $(srcdir)/libgmem/wire/auth.h \
		$(srcdir)/libgmem/wire/seal.h
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(ISAL_CFLAGS) $(SODIUM_CFLAGS) \
		$(CRYPTO_CFLAGS) -o $@ $(FUZZ_SRCS) $(ISAL_LIBS) $(SODIUM_LIBS) \
		$(CRYPTO_LIBS) -lpthread

fuzz/fuzz-frames: fuzz/fuzz-frames.c $(libgmem_libgmem_la_SOURCES) \
		$(FUZZ_LIB_EXTRA) config.h
	@mkdir -p fuzz
	srcs=; for f in $(libgmem_libgmem_la_SOURCES) $(FUZZ_LIB_EXTRA); do \
		case $$f in \
		*.h|libgmem/transport/tcp.c|libgmem/transport/rdma.c|\
		libgmem/region/numa.c) ;; \
		*) case " $$srcs " in *" $(srcdir)/$$f "*) ;; \
		   *) srcs="$$srcs $(srcdir)/$$f" ;; esac ;; \
		esac; \
	done; \
	$(FUZZ_CC) $(FUZZ_CFLAGS) -include config.h $(XXHASH_CFLAGS) \
		$(ISAL_CFLAGS) $(SODIUM_CFLAGS) $(CRYPTO_CFLAGS) -o $@ \
		$(srcdir)/fuzz/fuzz-frames.c $$srcs \
		$(XXHASH_LIBS) $(ISAL_LIBS) $(SODIUM_LIBS) $(CRYPTO_LIBS) -lpthread

fuzz: fuzz/fuzz-wire fuzz/fuzz-frames
	@mkdir -p fuzz/work-wire fuzz/work-frames
	./fuzz/fuzz-wire -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
		-artifact_prefix=fuzz/ -print_final_stats=1 \
		fuzz/work-wire $(srcdir)/fuzz/corpus/wire
	./fuzz/fuzz-frames -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
		-artifact_prefix=fuzz/ -print_final_stats=1 \
		fuzz/work-frames $(srcdir)/fuzz/corpus/frames
.PHONY: fuzz
