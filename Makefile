# ghost — every entry point. `make run` and `make test` are the two a
# newcomer needs; both install what is missing first.
SHELL      := /bin/bash
GO         ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BUILD      := build
VMODTOOL   ?= /usr/share/varnish/vmodtool.py
VARNISHINC ?= /usr/include/varnish
CC         ?= cc
CFLAGS     ?= -O2 -g
VMOD_CFLAGS := $(CFLAGS) -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -pthread \
               -I$(VARNISHINC) -I$(BUILD)/vmod -Ivmod-shim
PREFIX     ?= /usr/local
FUZZTIME   ?= 5s
export PATH := $(PATH):/usr/local/go/bin

VMOD_SRC := $(wildcard vmod-shim/*.c)
VMOD_HDR := $(wildcard vmod-shim/*.h)
GO_SRC   := $(shell find . -name '*.go' -not -path './build/*') go.mod go.sum

.PHONY: all deps build test test-go test-fuzz test-vtc test-e2e test-fault fault \
        run bench install uninstall fmt vet clean

all: build

## deps: install what is missing (Debian packages; Go modules come with the build)
deps:
	@bash dist/deps.sh

## build: build/ghostd and build/libvmod_ghost.so
build: deps $(BUILD)/ghostd $(BUILD)/upstream $(if $(VMOD_SRC),$(BUILD)/libvmod_ghost.so)

$(BUILD)/ghostd: $(GO_SRC)
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./cmd/ghostd

$(BUILD)/upstream: $(GO_SRC)
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./test/upstream

$(BUILD)/vmod/vcc_ghost_if.c: vmod-shim/vmod_ghost.vcc
	@mkdir -p $(BUILD)/vmod
	cd $(BUILD)/vmod && python3 $(VMODTOOL) -o vcc_ghost_if $(CURDIR)/vmod-shim/vmod_ghost.vcc
	: > $(BUILD)/vmod/config.h

$(BUILD)/libvmod_ghost.so: $(BUILD)/vmod/vcc_ghost_if.c $(VMOD_SRC) $(VMOD_HDR)
	$(CC) $(VMOD_CFLAGS) -shared -o $@ $(BUILD)/vmod/vcc_ghost_if.c $(VMOD_SRC)

## test: everything — format, vet, unit (race), fuzz, VTC, end-to-end, faults (short)
test: build
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

## run: demo — varnishd + ghostd + demo upstreams on loopback
run: build
	@bash dist/demo/run.sh

## bench: ghost against static, if-chain and vmod_selector VCL
bench: build
	@bash test/bench/run.sh

install: build
	install -D -m 0755 $(BUILD)/ghostd $(DESTDIR)$(PREFIX)/bin/ghostd
	install -D -m 0644 $(BUILD)/libvmod_ghost.so $(DESTDIR)$$(pkg-config --variable=vmoddir varnishapi)/libvmod_ghost.so
	install -D -m 0644 vcl/ghost.vcl $(DESTDIR)/etc/varnish/ghost.vcl
	install -D -m 0644 dist/systemd/ghostd.service $(DESTDIR)/etc/systemd/system/ghostd.service
	install -D -m 0644 dist/systemd/ghostd.socket $(DESTDIR)/etc/systemd/system/ghostd.socket
	@test -e $(DESTDIR)/etc/varnish/ghost.json || install -D -m 0644 dist/ghost.json $(DESTDIR)/etc/varnish/ghost.json

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ghostd \
	      $(DESTDIR)$$(pkg-config --variable=vmoddir varnishapi)/libvmod_ghost.so \
	      $(DESTDIR)/etc/varnish/ghost.vcl \
	      $(DESTDIR)/etc/systemd/system/ghostd.service $(DESTDIR)/etc/systemd/system/ghostd.socket

clean:
	rm -rf $(BUILD)
