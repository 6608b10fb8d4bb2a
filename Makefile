# sysperf: `make run` starts a hub with embedded NATS and a local agent;
# `make test` runs every test. See README.md.

GO        ?= go
NPM       ?= npm
BIN       := bin
HTTP      ?= 127.0.0.1:8321
NATS      ?= 127.0.0.1:4321
DATA      ?= data
# CONFIG is a hub config file for `make run` (--config; the agent never reads it).
CONFIG    ?=
# --version of both binaries: git describe, and the commit.
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X github.com/sysperf/sysperf/internal/version.version=$(VERSION) -X github.com/sysperf/sysperf/internal/version.commit=$(COMMIT)
# The hub is linked with the runtime's goroutine stack shrinking off
# (GODEBUG gcshrinkstackoff=1 as its default; GODEBUG in the environment
# still overrides it). The embedded NATS server runs two goroutines per
# agent connection, the writer's stack 32 KiB each time it sends an ack:
# every collection halved them and the next message grew them back, a
# tenth of a 2,000-host hub's CPU copying stacks, for no memory saved
# (95-99 MiB of stacks either way; README, "the soft memory limit"). //go:debug does not take this setting, and the
# go command sets runtime.godebugDefault itself only when go.mod's go line
# is older than the toolchain (it is not: `go list -f {{.DefaultGODEBUG}}
# ./cmd/hub` is empty). deploy/Dockerfile links the same way.
HUB_LDFLAGS := $(LDFLAGS) -X runtime.godebugDefault=gcshrinkstackoff=1
# go-nvml's headers trip deprecation warnings that say nothing about our code.
export CGO_CFLAGS ?= -Wno-deprecated-declarations

UI_SRC := $(shell find webui/src webui/index.html webui/package.json webui/vite.config.* webui/tailwind.config.* webui/postcss.config.* webui/tsconfig*.json -type f 2>/dev/null)

.PHONY: all run build ui test test-go test-ui test-e2e bench lint clean generate loadtest

all: build

# The UI is rebuilt only when its sources are newer than the build.
webui/node_modules/.package-lock.json: webui/package-lock.json
	cd webui && $(NPM) ci --no-audit --no-fund
	@touch $@

webui/dist/index.html: webui/node_modules/.package-lock.json $(UI_SRC)
	cd webui && $(NPM) run build
	@touch $@

ui: webui/dist/index.html

# bin/agent is written by install(1), as a host installs it (deploy/), not
# left as the linker wrote it: the linker's output sits in the page cache in
# large folios, which the kernel maps whole, so a freshly linked agent shows
# 1–3 MiB more resident than the same binary installed (README, "Agent cost").
define build-agent
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/agent.linked ./cmd/agent
	install -m 0755 $(BIN)/agent.linked $(BIN)/agent
	rm -f $(BIN)/agent.linked
endef

build: ui
	$(GO) build -ldflags '$(HUB_LDFLAGS)' -o $(BIN)/hub ./cmd/hub
	$(build-agent)
	@node webui/scripts/bundle-size.mjs | tail -n 1

run: build
	@mkdir -p $(DATA)
	@echo "starting hub (embedded NATS on $(NATS)) and a local agent; Ctrl-C stops both"
	@trap 'kill $$hub $$agent 2>/dev/null; wait' EXIT; \
	trap 'kill $$hub $$agent 2>/dev/null; wait $$hub; s=$$?; wait; exit $$s' INT TERM; \
	host=$$(hostname | tr -c 'A-Za-z0-9_\n-' '-'); \
	$(BIN)/hub agent add $$host --data-dir=$(DATA) --out=$(DATA)/agent.creds || exit 1; \
	$(BIN)/hub --http=$(HTTP) --nats-listen=$(NATS) --data-dir=$(DATA) $(if $(CONFIG),--config=$(CONFIG)) & hub=$$!; \
	up=; for i in $$(seq 1 100); do \
		sleep 0.2; kill -0 $$hub 2>/dev/null || break; \
		$(BIN)/hub --healthcheck --http=$(HTTP) 2>/dev/null && { up=1; break; }; \
	done; \
	[ -n "$$up" ] || { echo "hub did not come up on $(HTTP) (see its log above)"; exit 1; }; \
	$(BIN)/agent --nats-url=nats://$(NATS) --nats-creds=$(DATA)/agent.creds --host-id=$$host & agent=$$!; \
	echo; echo "  dashboard (signs in): http://$(HTTP)/login?token=$$(head -n 1 $(DATA)/http.token)"; echo; \
	wait $$hub

test: test-go test-ui test-e2e

# The page's generated files: webui/src/types.gen.ts and defaultRules.gen.json
# from the Go types and alert defaults (internal/tsgen), and the golden fixture
# of a real merge (internal/hub's TestGoldenUpdate) and of the fleet view's
# history and update (internal/server's TestGoldenFleet); their tests, part of
# test-go, fail while any is stale.
generate:
	$(GO) generate ./pkg/metrics
	$(GO) test -count=1 -run '^TestGoldenUpdate$$' ./internal/hub -update-golden
	$(GO) test -count=1 -run '^TestGoldenFleet$$' ./internal/server -update-golden

test-go:
	$(GO) vet ./...
	@d=$$($(GO) list -f '{{.DefaultGODEBUG}}' ./cmd/hub); if [ -n "$$d" ]; then echo "cmd/hub has a default GODEBUG ($$d) that HUB_LDFLAGS would replace: add it there"; exit 1; fi
	$(GO) test -race -count=1 -timeout 20m ./...
	# The flood test's RSS bound, which the race detector's shadow memory hides.
	$(GO) test -count=1 -run '^TestFlood' ./internal/hub

test-ui: webui/node_modules/.package-lock.json
	cd webui && $(NPM) test

test-e2e: build
	cd webui && SYSPERF_BIN_DIR=$(CURDIR)/$(BIN) $(NPM) run e2e

# A fleet against a hub of its own, on loopback ports: HOSTS × GPUS publish
# real samples (each host enrolled with its own credential), BROWSERS read
# the feed (VIEW: a query string such as view=fleet or view=host&host=load0000).
HOSTS    ?= 200
GPUS     ?= 8
BROWSERS ?= 10
VIEW     ?=
LOAD_FOR ?= 60s
# FIGURES=walk: each GPU's and host's figures a bounded random walk, a few
# GPUs hot at a time (internal/loadtest/walk.go); FIGURES=uniform: every
# figure drawn at random each sample, the tool's figures before the walk.
FIGURES  ?= walk
# INGEST=1: no browsers; the hosts publish as fast as JetStream acks (WINDOW
# publishes in flight per host) for LOAD_FOR, and the tool reports samples
# stored per second and the hub's CPU per sample consumed.
INGEST   ?=
WINDOW   ?= 32
# RESTART=1: the tool runs bin/hub itself, fills 60 min of HOSTS × GPUS
# samples (stamped over the past hour), restarts the hub on its data and
# times /healthz 200 and a complete 60m history of a host and of the fleet.
RESTART  ?=
# PREFILL=60m (or 1, the same): before the live load, every host publishes an
# hour of samples stamped over the past hour (then the minutes that took),
# and the hub consumes them as live ones: its history windows, samples stream
# and per-host state are a hub's that has run for an hour, so the RSS and CPU
# reported are a long-running hub's, not those of a hub a minute old (whose
# windows are nearly empty). Takes a few minutes at 2,000 hosts. A shorter
# duration fills less; samples stamped more than the hub's --replay (60 min)
# back are dropped, so a longer one does not fill the long windows further.
# PREFILL_WINDOW publishes in flight per host while filling: few, so the
# hub consumes the backlog about as fast as it is stored rather than
# holding a burst (32 per host left it with 0.6-0.9 GB live while it caught
# up, a start-up peak, not an hour's steady state).
PREFILL  ?=
PREFILL_WINDOW ?= 4
# HUB_FLAGS: more flags for the hub under load, e.g.
# HUB_FLAGS=--stream-max-bytes=256MiB to see the samples stream at its cap.
HUB_FLAGS ?=
loadtest: build
	$(GO) build -o $(BIN)/loadtest ./cmd/loadtest
	@if [ -n "$(RESTART)" ]; then $(BIN)/loadtest --restart --hub-bin=$(BIN)/hub --hosts=$(HOSTS) --gpus=$(GPUS) --window=$(WINDOW); exit $$?; fi; \
	d=$$(mktemp -d); http=127.0.0.1:18391; nats=127.0.0.1:14391; \
	trap 'kill $$hub 2>/dev/null; wait; rm -rf $$d' EXIT INT TERM; \
	$(BIN)/hub --http=$$http --nats-listen=$$nats --data-dir=$$d --log-level=warn --ws-max-clients=$$(( $(BROWSERS) + 16 )) $(HUB_FLAGS) & hub=$$!; \
	for i in $$(seq 1 100); do sleep 0.2; $(BIN)/hub --healthcheck --http=$$http 2>/dev/null && break; done; \
	$(BIN)/loadtest --nats-url=nats://$$nats --hub=http://$$http --data-dir=$$d --token-file=$$d/http.token \
		--hub-pid=$$hub --hosts=$(HOSTS) --gpus=$(GPUS) --figures=$(FIGURES) --browsers=$(BROWSERS) --view='$(VIEW)' --duration=$(LOAD_FOR) \
		$(if $(INGEST),--ingest --window=$(WINDOW)) \
		$(if $(PREFILL),--prefill=$(if $(filter 1,$(PREFILL)),60m,$(PREFILL)) --window=$(PREFILL_WINDOW))

# Every benchmark; the agent's whole tick on a GPU box (8 mock H200s, 4 model
# servers, 40 GPU processes) is internal/agent's BenchmarkTick.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# What the running agent costs (README, "Agent cost"): whole-process CPU per
# collection and RSS over 60 collections at 5 s and 300 at 100 ms, about six
# minutes. AGENT=path measures another build of the agent.
AGENT ?= $(BIN)/agent
.PHONY: agentcost
agentcost:
	$(build-agent)
	$(GO) run ./cmd/agentcost --agent=$(AGENT)

lint: webui/node_modules/.package-lock.json
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$$( $(GO) env GOPATH)/bin/staticcheck ./...
	cd webui && $(NPM) run typecheck

# dist/.keep is committed so that go:embed matches before a UI build.
clean:
	rm -rf $(BIN) webui/build-e2e
	find webui/dist -mindepth 1 ! -name .keep -exec rm -rf {} +
