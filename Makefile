# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# sluice: one entry point. `make help` lists the targets.

.DELETE_ON_ERROR:
.SUFFIXES:
# Keep the BPF objects: vmtest ships them and `bpftool prog loadall` wants them.
.SECONDARY:

VERSION := 0.1.0

# BUILD is the output directory; SAN=1 builds everything under ASan+UBSan
# into $(BUILD)/san, so sanitized and plain objects never mix.
BUILD ?= build
ifeq ($(SAN),1)
OUT := $(BUILD)/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
OUT := $(BUILD)
SANFLAGS :=
endif

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 \
	  -D_GNU_SOURCE -DSLUICE_VERSION='"$(VERSION)"' -Iinclude $(AGENT_INC) -I$(OUT) -isystem $(LLHTTP_INC) -MMD -MP $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
LDLIBS := -lbpf -lelf -lz -lyaml -ljansson -lssl -lcrypto -lcurl
# The edge's HTTP server (agent/daemon/edge.c): sluiced and what links
# libsluiced.a.
DLDLIBS := -lmicrohttpd
# llhttp, the HTTP/1 parser of Node.js: Debian's node-llhttp ships it as C
# sources, compiled into libsluiced.a with upstream's own flags (its
# generated code is not ours to warn about).
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP_CFLAGS := -O2 -g -std=gnu11 -w -isystem $(LLHTTP_INC) $(SANFLAGS)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	      -Iinclude -Ibpf -I$(OUT) -MMD -MP

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))

# agent/ has one folder per subsystem, and the folder says who links it:
#   core/, identity/   both binaries, from libsluice.a
#   daemon/, mesh/     sluiced only, from libsluiced.a (daemon/sluiced.c is
#                      its main)
#   ctl/               sluicectl only (ctl/sluicectl.c is its main)
# The unit and integration tests link both libraries.
AGENT_DIRS := agent/core agent/identity agent/daemon agent/mesh agent/ctl
COMMON_DIRS := agent/core agent/identity
DAEMON_DIRS := agent/daemon agent/mesh
AGENT_MAIN := agent/daemon/sluiced.c
agent_objs = $(patsubst agent/%.c,$(OUT)/agent/%.o,$(1))
LIB_SRCS := $(foreach d,$(COMMON_DIRS),$(wildcard $(d)/*.c))
LIB := $(OUT)/libsluice.a
DLIB_SRCS := $(filter-out $(AGENT_MAIN),$(foreach d,$(DAEMON_DIRS),$(wildcard $(d)/*.c)))
DLIB := $(OUT)/libsluiced.a
LLHTTP_OBJS := $(patsubst %,$(OUT)/llhttp/%.o,api http llhttp)
CTL_SRCS := $(wildcard agent/ctl/*.c)
# What both binaries link sees only its own folders' headers: the compiler
# refuses a core/ or identity/ module that reaches into daemon/ or ctl/.
AGENT_INC = $(AGENT_DIRS:%=-I%)
$(call agent_objs,$(LIB_SRCS)): AGENT_INC = $(COMMON_DIRS:%=-I%)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
# tests/lib/: helpers both test suites link (the test IdP's launcher).
TLIB_SRCS := $(wildcard tests/lib/*.c)
TLIB_OBJS := $(patsubst tests/lib/%.c,$(OUT)/tests/lib/%.o,$(TLIB_SRCS))
INTEG_SRCS := $(wildcard tests/integ/*.c)
INTEG_OBJS := $(patsubst tests/integ/%.c,$(OUT)/tests/integ/%.o,$(INTEG_SRCS))
INTEG_BIN := $(OUT)/tests/integ_progs
# tests/load/: the load generator and its echo server, programs of their
# own that the load tests run inside a workload cgroup and node B.
LOAD_SRCS := $(wildcard tests/load/*.c)
LOAD_BINS := $(patsubst tests/load/%.c,$(OUT)/tests/%,$(LOAD_SRCS))
# make bench-load: the load tests' full runs, for the README's figures.
LOAD_SECONDS ?= 60

# libFuzzer harnesses, one per parser of outside input. clang builds them
# and, again, the agent sources they call, with coverage and ASan+UBSan
# (the unit build's objects are gcc's and uninstrumented). Only `make fuzz`
# builds them: the fuzzer runtime is clang's (libclang-rt-14-dev).
FUZZ_TIME ?= 60
FUZZ_OUT := $(OUT)/fuzz
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_OUT)/%,$(FUZZ_SRCS))
FUZZ_LIB_SRCS := $(LIB_SRCS) agent/mesh/frame.c agent/mesh/http_gate.c agent/daemon/edge_decide.c \
		 agent/daemon/edge_cache.c tests/fuzz/harness.c
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(FUZZ_LIB_SRCS)) \
		 $(patsubst %,$(FUZZ_OUT)/llhttp/%.o,api http llhttp)
FUZZ_LIB := $(FUZZ_OUT)/libsluice-fuzz.a
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
	       -DSLUICE_VERSION='"$(VERSION)"' -Iinclude $(AGENT_DIRS:%=-I%) -Itests/fuzz \
	       -isystem $(LLHTTP_INC) \
	       -MMD -MP $(FUZZ_SAN)
# Deferred: plain `make` never asks clang for it.
FUZZ_RT = $(shell $(CLANG) -print-file-name=libclang_rt.fuzzer-$(shell uname -m).a)

.PHONY: FORCE all deps test check test-unit test-integ test-san bench bench-load demo vmtest clean help format \
	fuzz fuzz-short fuzz-build fuzz-runtime

all: $(OUT)/sluiced $(OUT)/sluicectl

help:
	@echo 'make            build sluiced and sluicectl into $(OUT)/ (V=1: full commands)'
	@echo 'make deps       install the Debian packages the build, tests and demo need'
	@echo 'make check      what CI runs: deps, build, unit tests (plain and ASan+UBSan),'
	@echo '                a short fuzz run, root integration tests, VM tests; ends with'
	@echo '                "N passed, N failed"'
	@echo 'make test-unit  unit tests only (no privileges)'
	@echo 'make test-integ integration tests only (root)'
	@echo 'make demo       the two-node demo (root)'
	@echo 'make bench      wrk: direct, one agent, two agents over mTLS, and nginx/haproxy'
	@echo '                reference proxies, in one run, as ratios (root)'
	@echo 'make bench-load the load and slow-peer tests at 10,000 connections, held'
	@echo '                LOAD_SECONDS=$(LOAD_SECONDS) s, with their figures (root)'
	@echo 'make vmtest     integration tests inside Debian kernels under qemu, one VM per'
	@echo '                kernel of VMTEST_KERNELS (default "6.1 6.12") (root)'
	@echo 'make fuzz       build the libFuzzer harnesses (tests/fuzz/) and run each for'
	@echo '                FUZZ_TIME seconds (default 60); ends with "N passed, N failed"'
	@echo 'make fuzz-short the same for 6 s each, as make check runs it'
	@echo 'make format     clang-format the C lines changed since HEAD (git clang-format)'
	@echo 'make clean      remove $(BUILD)/'
	@echo
	@echo 'Sources: agent/core/ and agent/identity/ go into both binaries,'
	@echo 'agent/daemon/ and agent/mesh/ into sluiced, agent/ctl/ into sluicectl.'

deps:
	$(Q)scripts/deps.sh

$(OUT) $(OUT)/tests $(OUT)/tests/integ:
	$(Q)mkdir -p $@

# Compare-then-replace: an unchanged kernel must not rebuild everything.
$(OUT)/vmlinux.h: FORCE | $(OUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp
	$(Q)cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(OUT)/%.bpf.o: bpf/%.bpf.c $(OUT)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(OUT)/agent/%.o: agent/%.c $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(call agent_objs,$(LIB_SRCS))
	$(call msg,AR,$@)
	$(Q)rm -f $@; ar rcs $@ $^

$(OUT)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(LLHTTP_CFLAGS) -c $< -o $@

$(DLIB): $(call agent_objs,$(DLIB_SRCS)) $(LLHTTP_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@; ar rcs $@ $^

$(OUT)/sluiced: $(call agent_objs,$(AGENT_MAIN)) $(DLIB) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) $(DLDLIBS) -o $@

$(OUT)/sluicectl: $(call agent_objs,$(CTL_SRCS)) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/lib/%.o: tests/lib/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -Itests/lib -c $< -o $@

$(OUT)/tests/test_%: tests/unit/test_%.c $(TLIB_OBJS) $(DLIB) $(LIB) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests -Itests/lib $< $(TLIB_OBJS) $(DLIB) $(LIB) $(LDFLAGS) \
		$(LDLIBS) $(DLDLIBS) -lcmocka -o $@

$(OUT)/tests/integ/%.o: tests/integ/%.c $(SKELS) | $(OUT)/tests/integ
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itests -Itests/lib -c $< -o $@

$(OUT)/tests/%: tests/load/%.c | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDFLAGS) -o $@

# The one load tool that writes an agent's maps: it needs the names code.
$(OUT)/tests/mapfill: tests/load/mapfill.c $(LIB) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

# What the exporter does per span, without the network (bench): otlp's code.
$(OUT)/tests/spancost: tests/load/spancost.c $(DLIB) $(LIB) | $(OUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(DLIB) $(LIB) $(LDFLAGS) $(LDLIBS) $(DLDLIBS) -o $@

$(INTEG_BIN): $(INTEG_OBJS) $(TLIB_OBJS) $(DLIB) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) $(DLDLIBS) -o $@

build-tests: $(UNIT_BINS) $(INTEG_BIN) $(LOAD_BINS)

test-unit: $(UNIT_BINS)
	$(Q)tests/run_unit.sh $(OUT)/tests

test-san:
	$(Q)$(MAKE) --no-print-directory SAN=1 test-unit

test-integ: all $(INTEG_BIN) $(LOAD_BINS)
	$(Q)$(INTEG_BIN) -b $(OUT)

fuzz: fuzz-build
	$(Q)tests/fuzz/run.sh $(FUZZ_OUT) $(FUZZ_TIME)

fuzz-short: FUZZ_TIME := 6
fuzz-short: fuzz

fuzz-build: $(FUZZ_BINS)

fuzz-runtime:
	$(Q)test -f "$(FUZZ_RT)" || { echo "fuzz: clang's fuzzer runtime is missing:" \
		"install libclang-rt-14-dev (make deps)" >&2; exit 1; }

$(FUZZ_OUT)/obj/%.o: %.c | fuzz-runtime
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/llhttp/%.o: $(LLHTTP_DIR)/%.c | fuzz-runtime
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -O1 -g -w -isystem $(LLHTTP_INC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@; ar rcs $@ $^

$(FUZZ_OUT)/fuzz_%: $(FUZZ_OUT)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(call msg,LINK,$@)
	$(Q)$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer $^ $(LDLIBS) -lpthread -o $@

check:
	$(Q)tests/check.sh

test: check

demo: deps all
	$(Q)scripts/demo.sh $(OUT)

bench: deps all $(OUT)/tests/mapfill $(OUT)/tests/spancost
	$(Q)scripts/bench.sh $(OUT)

bench-load: all $(INTEG_BIN) $(LOAD_BINS)
	$(Q)for t in load_agent load_tunnel slow_peers metrics_scale; do \
		SLUICE_LOAD_SECONDS=$(LOAD_SECONDS) $(INTEG_BIN) -b $(OUT) -t $$t -v || exit 1; \
	done

vmtest: all $(INTEG_BIN)
	$(Q)vmtest/run.sh $(OUT)

# Changed lines only: the tree is kernel style kept by hand (trailing
# comments aligned on tab stops), which no clang-format setting reproduces,
# so a whole-file run would rewrite code nobody touched.
format:
	$(Q)git clang-format -q -f --extensions c,h HEAD -- agent bpf include tests

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

FORCE:

-include $(wildcard $(OUT)/*.d $(OUT)/agent/*/*.d $(OUT)/tests/*.d $(OUT)/tests/lib/*.d $(OUT)/tests/integ/*.d \
	   $(FUZZ_OUT)/obj/*/*/*.d)
