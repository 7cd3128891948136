# ghost — every entry point. `make run` and `make test` are the two a
# newcomer needs; both install what is missing first.
SHELL      := /bin/bash
# Deferred (?=): evaluated when used, after make deps may have installed Go.
GO         ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_LDFLAGS := -X main.version=$(VERSION)
RST2MAN    ?= rst2man
BUILD      := build
VMODTOOL   ?= /usr/share/varnish/vmodtool.py
VSCTOOL    ?= /usr/share/varnish/vsctool.py
VARNISHINC ?= /usr/include/varnish
CC         ?= cc
CFLAGS     ?= -O2 -g
# -fno-plt: the VMOD calls varnishd and libc through its GOT directly,
# not through a PLT stub (each stub a code line of its own: ~15
# instruction-cache misses per request; docs/benchmarks.md, tenth
# session); varnishd loads VMODs with RTLD_NOW, so nothing is bound late.
# -fno-tree-vectorize and no padding inside functions (-falign-jumps/
# -loops/-labels=1; function starts keep gcc's alignment, GHOST_LINE
# where it matters): the request path's code is denser, fewer code lines
# per request (the shim's own simulated I1 misses per long-tail pass
# 91.9 -> 89.9, its instructions 2,052 -> 2,006; per long-tail miss
# 105.5 -> 105.0, callgrind, 2026-12-07). -Os is worse (122 misses per
# long-tail pass: it un-inlines the hot path's small helpers).
VMOD_CFLAGS := $(CFLAGS) -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -pthread \
               -fno-plt -fno-tree-vectorize -falign-jumps=1 -falign-loops=1 -falign-labels=1 \
               -I$(VARNISHINC) -I$(BUILD)/vmod -Ivmod-shim
PREFIX     ?= /usr/local
FUZZTIME   ?= 5s
export PATH := $(PATH):/usr/local/go/bin

VMOD_SRC := $(wildcard vmod-shim/*.c)
VMOD_HDR := $(wildcard vmod-shim/*.h)
GO_SRC   := $(shell find . -name '*.go' -not -path './build/*') go.mod go.sum

.PHONY: all deps deps-run deps-test deps-bench build test test-go test-c test-fuzz test-vtc test-e2e test-fault fault scale \
        run bench install uninstall fmt vet clean

all: build

## deps: install what is missing to build (Debian packages; Go modules come
## with the build). deps-run, deps-test and deps-bench add what make run,
## make test and make bench need (dist/deps.sh lists them).
deps:
	@bash dist/deps.sh build
deps-run:
	@bash dist/deps.sh run
deps-test:
	@bash dist/deps.sh test
deps-bench:
	@bash dist/deps.sh bench

## build: build/ghostd, build/libvmod_ghost.so and its man page
build: deps $(BUILD)/ghostd $(BUILD)/upstream $(if $(VMOD_SRC),$(BUILD)/libvmod_ghost.so $(BUILD)/vmod_ghost.3)

$(BUILD)/ghostd: $(GO_SRC)
	@mkdir -p $(BUILD)
	$(GO) build -ldflags "$(GO_LDFLAGS)" -o $@ ./cmd/ghostd

$(BUILD)/upstream: $(GO_SRC)
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./test/upstream

$(BUILD)/vmod/vcc_ghost_if.c: vmod-shim/vmod_ghost.vcc
	@mkdir -p $(BUILD)/vmod
	cd $(BUILD)/vmod && python3 $(VMODTOOL) -o vcc_ghost_if $(CURDIR)/vmod-shim/vmod_ghost.vcc
	: > $(BUILD)/vmod/config.h

$(BUILD)/vmod_ghost.3: $(BUILD)/vmod/vcc_ghost_if.c
	$(RST2MAN) $(BUILD)/vmod/vmod_ghost.man.rst > $@

# The VMOD's counters: Varnish's vsctool.py turns ghost.vsc into the
# segment's struct and its New/Destroy functions, as for varnishd's own.
$(BUILD)/vmod/VSC_ghost.c: vmod-shim/ghost.vsc
	@mkdir -p $(BUILD)/vmod
	cd $(BUILD)/vmod && python3 $(VSCTOOL) -ch $(CURDIR)/vmod-shim/ghost.vsc
	@test -e $(BUILD)/vmod/config.h || : > $(BUILD)/vmod/config.h

$(BUILD)/libvmod_ghost.so: $(BUILD)/vmod/vcc_ghost_if.c $(BUILD)/vmod/VSC_ghost.c $(VMOD_SRC) $(VMOD_HDR) Makefile
	$(CC) $(VMOD_CFLAGS) -shared -o $@ $(BUILD)/vmod/vcc_ghost_if.c $(BUILD)/vmod/VSC_ghost.c $(VMOD_SRC)

# C tests of the shim's parts that need no varnishd (test/cshim/)
CSHIM_CFLAGS := $(CFLAGS) -Wall -Wextra -Werror -Ivmod-shim

$(BUILD)/cshim/pick_test: test/cshim/pick_test.c test/cshim/groups.h test/cshim/vectors.h vmod-shim/pick.c vmod-shim/pick.h vmod-shim/msgpack.h
	@mkdir -p $(@D)
	$(CC) $(CSHIM_CFLAGS) -o $@ test/cshim/pick_test.c vmod-shim/pick.c

$(BUILD)/cshim/ring_test: test/cshim/ring_test.c test/cshim/vectors.h vmod-shim/ring.c vmod-shim/ring.h
	@mkdir -p $(@D)
	$(CC) $(CSHIM_CFLAGS) -o $@ test/cshim/ring_test.c vmod-shim/ring.c

$(BUILD)/cshim/select_test: test/cshim/select_test.c test/cshim/groups.h test/cshim/vectors.h vmod-shim/pick.c vmod-shim/pick.h vmod-shim/msgpack.h
	@mkdir -p $(@D)
	$(CC) $(CSHIM_CFLAGS) -o $@ test/cshim/select_test.c vmod-shim/pick.c

# not a test: instructions per ring lookup under callgrind (ring_bench.c)
$(BUILD)/cshim/ring_bench: test/cshim/ring_bench.c test/cshim/vectors.h vmod-shim/ring.c vmod-shim/ring.h
	@mkdir -p $(@D)
	$(CC) $(CSHIM_CFLAGS) -o $@ test/cshim/ring_bench.c vmod-shim/ring.c

$(BUILD)/cshim/query_test: test/cshim/query_test.c test/cshim/vectors.h vmod-shim/query.c vmod-shim/query.h
	@mkdir -p $(@D)
	$(CC) $(CSHIM_CFLAGS) -o $@ test/cshim/query_test.c vmod-shim/query.c

# The memo's host table used (memo_test.c): memo.c and reuse.c as the
# VMOD has them, the workspace from ws.c
MEMO_TEST_SRC := test/cshim/memo_test.c test/cshim/ws.c test/cshim/vmod_stubs.c vmod-shim/memo.c vmod-shim/reuse.c \
                 vmod-shim/rq.c vmod-shim/hdr.c vmod-shim/query.c vmod-shim/answer.c
$(BUILD)/cshim/memo_test: $(MEMO_TEST_SRC) $(VMOD_HDR) $(BUILD)/vmod/vcc_ghost_if.c $(BUILD)/vmod/VSC_ghost.c
	@mkdir -p $(@D)
	$(CC) $(CSHIM_CFLAGS) -Wno-unused-parameter -pthread -I$(VARNISHINC) -I$(BUILD)/vmod -o $@ $(MEMO_TEST_SRC) -lvarnishapi -lm

# libFuzzer targets of the shim's answer decoder and memo key builder
# (test/fuzz.sh runs them; clang and libclang-rt-dev from make deps-test)
FUZZ_CC     ?= clang
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -Wall -Wextra -Werror -Wno-unused-parameter -I$(VARNISHINC) -I$(BUILD)/vmod -Ivmod-shim

$(BUILD)/cshim/fuzz_answer: test/cshim/fuzz_answer.c vmod-shim/answer.c vmod-shim/pick.c $(VMOD_HDR) $(BUILD)/vmod/vcc_ghost_if.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ test/cshim/fuzz_answer.c vmod-shim/answer.c vmod-shim/pick.c -lvarnishapi

$(BUILD)/cshim/fuzz_key: test/cshim/fuzz_key.c test/cshim/ws.c test/cshim/vmod_stubs.c vmod-shim/reuse.c vmod-shim/rq.c vmod-shim/hdr.c vmod-shim/query.c vmod-shim/answer.c $(VMOD_HDR) $(BUILD)/vmod/vcc_ghost_if.c $(BUILD)/vmod/VSC_ghost.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ test/cshim/fuzz_key.c test/cshim/ws.c test/cshim/vmod_stubs.c vmod-shim/rq.c vmod-shim/hdr.c vmod-shim/query.c vmod-shim/answer.c -lvarnishapi

## test-c: the shim's C tests (weighted pick, query parameters, consistent-hash ring against route/'s vectors, the memo's host table)
test-c: $(BUILD)/cshim/pick_test $(BUILD)/cshim/select_test $(BUILD)/cshim/query_test $(BUILD)/cshim/ring_test $(BUILD)/cshim/memo_test
	$(BUILD)/cshim/pick_test route/testdata/pick_vectors.txt
	$(BUILD)/cshim/select_test route/testdata/select_vectors.txt
	$(BUILD)/cshim/ring_test route/ring/testdata/ring_vectors.txt
	$(BUILD)/cshim/query_test route/testdata/query_vectors.txt
	$(BUILD)/cshim/memo_test

## test: everything — format, vet, unit (race), fuzz, VTC, end-to-end, faults (short), dist
test: deps-test build
	@bash test/run-all.sh

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; find . -name '*.go' -not -path './build/*') 2>/dev/null | sort -u); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi; echo "gofmt: ok"

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 ./...

test-fuzz:
	@bash test/fuzz.sh $(FUZZTIME)

test-vtc: build
	@bash test/vtc/run.sh

test-e2e: build
	$(GO) test -count=1 -v -timeout 300s ./test/e2e/

fault: build
	GHOST_FAULT_LONG=1 $(GO) test -count=1 -v -timeout 1200s ./test/fault/

## scale: the scale suite (test/scale, docs/benchmarks.md "Scale"): 100k
## endpoints through varnishd + ghostd, retirement at 100k -> 50k, reloads of
## 100k vhosts x 10 routes. Minutes; needs a quiet machine; not in make test.
## SCALE_N, SCALE_ARGS (go test flags) and the GHOST_SCALE_* variables tune it.
SCALE_N ?= 100000
scale: build
	GHOST_SCALE=1 GHOST_SCALE_N=$(SCALE_N) $(GO) test -count=1 -v -timeout 90m ./test/scale/ $(SCALE_ARGS)

## run: demo — varnishd + ghostd + demo upstreams on loopback
run: deps-run build
	@bash dist/demo/run.sh

## bench: ghost against static, if-chain and vmod_selector VCL
bench: deps-bench build
	@bash test/bench/run.sh

## install: ghostd in $(PREFIX)/bin, the VMOD in Varnish's vmoddir, its man
## page, ghost.vcl, and the systemd units (ExecStart= pointing at $(PREFIX))
VMODDIR = $$(pkg-config --variable=vmoddir varnishapi)
install: build
	install -D -m 0755 $(BUILD)/ghostd $(DESTDIR)$(PREFIX)/bin/ghostd
	install -D -m 0644 $(BUILD)/libvmod_ghost.so $(DESTDIR)$(VMODDIR)/libvmod_ghost.so
	install -D -m 0644 $(BUILD)/vmod_ghost.3 $(DESTDIR)$(PREFIX)/share/man/man3/vmod_ghost.3
	install -D -m 0644 vcl/ghost.vcl $(DESTDIR)/etc/varnish/ghost.vcl
	@mkdir -p $(DESTDIR)/etc/systemd/system
	sed 's|/usr/local/bin/ghostd|$(PREFIX)/bin/ghostd|g' dist/systemd/ghostd.service > $(DESTDIR)/etc/systemd/system/ghostd.service
	install -m 0644 dist/systemd/ghostd.socket $(DESTDIR)/etc/systemd/system/ghostd.socket
	@test -e $(DESTDIR)/etc/varnish/ghost.json || install -D -m 0644 dist/ghost.json $(DESTDIR)/etc/varnish/ghost.json

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ghostd \
	      $(DESTDIR)$(VMODDIR)/libvmod_ghost.so \
	      $(DESTDIR)$(PREFIX)/share/man/man3/vmod_ghost.3 \
	      $(DESTDIR)/etc/varnish/ghost.vcl \
	      $(DESTDIR)/etc/systemd/system/ghostd.service $(DESTDIR)/etc/systemd/system/ghostd.socket

clean:
	rm -rf $(BUILD)
