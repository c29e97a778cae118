# SPDX-License-Identifier: MIT
# make fuzz: the libFuzzer harness of the frame parser, HELLO and AUTH
# (fuzz/fuzz-wire.c), built with clang apart from the rest, run for
# FUZZ_SECONDS from the seed corpus in fuzz/corpus/wire. New inputs go to
# fuzz/work, crashes to fuzz/crash-* (both in the build folder).
FUZZ_CC = clang
FUZZ_SECONDS = 60
FUZZ_SRCS = $(srcdir)/fuzz/fuzz-wire.c $(srcdir)/libgmem/wire/frame.c \
	$(srcdir)/libgmem/wire/proto.c $(srcdir)/libgmem/wire/auth.c \
	$(srcdir)/libgmem/wire/seal.c
EXTRA_DIST += fuzz/fuzz-wire.c fuzz/corpus

fuzz/fuzz-wire: $(FUZZ_SRCS) $(srcdir)/libgmem/wire/frame.h \
		$(srcdir)/libgmem/wire/proto.h $(srcdir)/libgmem/wire/auth.h \
		$(srcdir)/libgmem/wire/seal.h
	@mkdir -p fuzz
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -D_GNU_SOURCE \
		-I$(srcdir)/libgmem -I$(srcdir)/libgmem/include \
		$(ISAL_CFLAGS) $(SODIUM_CFLAGS) -o $@ $(FUZZ_SRCS) \
		$(ISAL_LIBS) $(SODIUM_LIBS)

fuzz: fuzz/fuzz-wire
	@mkdir -p fuzz/work
	./fuzz/fuzz-wire -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
		-artifact_prefix=fuzz/ -print_final_stats=1 \
		fuzz/work $(srcdir)/fuzz/corpus/wire
.PHONY: fuzz
