# n4 - punching UDP through two NAT4s.  Plain make; everything lands in build/.
#
#   make            libn4.a, n4, libn4shim.so, n4shim, test helpers
#   make check      what needs no root: unit tests (ASan+UBSan), fuzz replay and smoke,
#                   server, loopback shim and docs suites (tests/README.md)
#   make test       everything make check runs, plus the NAT lab and packaging (root)
#   make demo       NAT lab demo: two unmodified nc talking through two NAT4s
#   make fuzz       longer fuzz runs
#   make bench      benchmarks (not tests)
#   make install    PREFIX=/usr/local DESTDIR=

# The one place the version is defined: n4 --version, n4shim --version, libn4.pc
# (debian/changelog must carry the same upstream version; tests/pkg checks it).
VERSION  := 0.2.0
CC       ?= cc
PREFIX   ?= /usr/local
# Where libn4shim.so and libn4.a go (Debian: /usr/lib/<multiarch triplet>); n4shim
# looks there for the library.
LIBDIR   ?= $(PREFIX)/lib
MANDIR   ?= $(PREFIX)/share/man
BUILD    ?= build
CSTD     := -std=c11 -D_GNU_SOURCE -DN4_VERSION='"$(VERSION)"'
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wconversion -Wno-sign-conversion
CFLAGS   ?= -O2 -g
ALLCFLAGS = $(CSTD) $(WARN) $(CFLAGS) -Ilib -fPIC -fvisibility=hidden
LDFLAGS  ?=
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS   := -lpthread

LIB_SRC   := $(sort $(wildcard lib/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_SAN   := $(LIB_SRC:%.c=$(BUILD)/san/%.o)
CLI_SRC   := $(sort $(wildcard cli/*.c))
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
SHIM_SRC  := $(filter-out shim/n4shim.c,$(sort $(wildcard shim/*.c)))
SHIM_OBJ  := $(SHIM_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(sort $(wildcard tests/unit/*.c))
UNIT_SAN  := $(UNIT_SRC:%.c=$(BUILD)/san/%.o) $(BUILD)/san/cli/opts.o
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
HELP_SRC  := $(sort $(wildcard tests/helpers/*.c))
HELP_BIN  := $(HELP_SRC:tests/helpers/%.c=$(BUILD)/tests/%)
LAB_SRC   := $(sort $(wildcard tests/lab/tools/*.c))
LAB_BIN   := $(LAB_SRC:tests/lab/tools/%.c=$(BUILD)/lab/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

SHIM_TARGETS := $(if $(SHIM_SRC),$(BUILD)/libn4shim.so) $(if $(wildcard shim/n4shim.c),$(BUILD)/n4shim)

.PHONY: all check test unit demo fuzz bench install clean deps lab-tools helpers format
all: $(BUILD)/libn4.a $(BUILD)/n4 $(SHIM_TARGETS) helpers

helpers: $(HELP_BIN) $(BENCH_BIN)

$(BUILD)/%.o: %.c $(wildcard lib/*.h shim/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c $(wildcard lib/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) -Ilib -Icli -Itests/unit -c $< -o $@

# VERSION lives in this file: what prints it is rebuilt when it changes.
$(BUILD)/cli/n4.o $(BUILD)/n4shim: Makefile

$(BUILD)/libn4.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/n4: $(CLI_OBJ) $(BUILD)/libn4.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libn4.a $(LDLIBS)

$(BUILD)/libn4shim.so: $(SHIM_OBJ) $(BUILD)/libn4.a shim/exports.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libn4shim.so -Wl,--version-script=shim/exports.map -Wl,-z,defs -o $@ \
		$(SHIM_OBJ) $(BUILD)/libn4.a -ldl $(LDLIBS)

$(BUILD)/n4shim: shim/n4shim.c $(BUILD)/libn4.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) $(LDFLAGS) -Ilib -DN4_PREFIX='"$(PREFIX)"' -DN4_LIBDIR='"$(LIBDIR)"' \
		-o $@ $< $(BUILD)/libn4.a $(LDLIBS)

$(BUILD)/tests/unit: $(UNIT_SAN) $(LIB_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/helpers/%.c $(BUILD)/libn4.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -Ilib -o $@ $< $(BUILD)/libn4.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libn4.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -Ilib -o $@ $< $(BUILD)/libn4.a $(LDLIBS)

# Lab tools need libnetfilter-queue (NFQUEUE delay); `make deps` installs it.
$(BUILD)/lab/%: tests/lab/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -o $@ $< -lnetfilter_queue -lmnl $(LDLIBS)

lab-tools: $(LAB_BIN)

# The library is compiled for fuzzing once, not once per target.
FUZZFLAGS := $(CSTD) -g -O1 -Ilib
FUZZ_OBJ  := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)

$(BUILD)/fuzzobj/%.o: %.c $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

# Debian packages the tests and the demo need; installed only when missing.
deps:
	@tests/deps.sh

unit: $(BUILD)/tests/unit
	$(BUILD)/tests/unit

# The build runs on every core, after deps (the lab tools need its headers).
NPROC := $(shell nproc 2>/dev/null || echo 2)

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all $(BUILD)/tests/unit lab-tools $(FUZZ_BIN)
	@tests/run.sh

# No deps (installing needs root): the fuzz targets are built only when clang links
# a libFuzzer program; without it tests/fuzz/run.sh reports a visible skip.
LIBFUZZER_PROBE = mkdir -p $(BUILD) && printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n > 1000000; }\n' | \
	clang -fsanitize=fuzzer,address,undefined -x c -o $(BUILD)/libfuzzer-probe - >/dev/null 2>&1

check:
	@$(MAKE) --no-print-directory -j$(NPROC) all $(BUILD)/tests/unit
	@if $(LIBFUZZER_PROBE); then $(MAKE) --no-print-directory -j$(NPROC) $(FUZZ_BIN); \
	else echo "# clang with libFuzzer not found: the fuzz targets are not built"; fi
	@tests/run.sh --check

demo: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all lab-tools
	@examples/demo.sh

fuzz: deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(FUZZ_BIN)
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-300} tests/fuzz/run.sh

bench: deps all lab-tools
	@bench/deps.sh
	@bench/run.sh

# Only what is installed is built (not the test helpers): the Debian build uses this.
# libn4.pc for pkg-config: libn4 is static only, so its users link pthreads too.
install: $(BUILD)/libn4.a $(BUILD)/n4 $(SHIM_TARGETS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 755 $(BUILD)/n4 $(DESTDIR)$(PREFIX)/bin/n4
	install -m 644 $(BUILD)/libn4.a $(DESTDIR)$(LIBDIR)/libn4.a
	install -m 644 lib/n4.h $(DESTDIR)$(PREFIX)/include/n4.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$${prefix}/include' '' \
		'Name: libn4' 'Description: UDP hole punching through two port-incrementing NATs (NAT4)' \
		'Version: $(VERSION)' 'Libs: -L$${libdir} -ln4 -lpthread' 'Cflags: -I$${includedir}' \
		>$(DESTDIR)$(LIBDIR)/pkgconfig/libn4.pc
	$(if $(wildcard $(BUILD)/libn4shim.so),install -m 644 $(BUILD)/libn4shim.so $(DESTDIR)$(LIBDIR)/libn4shim.so)
	$(if $(wildcard $(BUILD)/n4shim),install -m 755 $(BUILD)/n4shim $(DESTDIR)$(PREFIX)/bin/n4shim)
	install -m 644 $(wildcard doc/*.1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(wildcard doc/*.3) $(DESTDIR)$(MANDIR)/man3/

format:
	clang-format -i $(LIB_SRC) $(wildcard lib/*.h) $(CLI_SRC) $(wildcard shim/*.[ch] tests/*/*.[ch] bench/*.c)

clean:
	rm -rf $(BUILD)
