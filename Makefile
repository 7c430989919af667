# kord — see README.md. `make run` starts the embedded development setup, `make test` runs
# every check CI runs.
GO                  ?= go
BIN                 := bin
TOOLS               := $(CURDIR)/.cache/bin
STATICCHECK_VERSION := v0.8.2
FUZZTIME            ?= 10s
VERSION             ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS             := -X github.com/kordhq/kord/orderer/server.Version=$(VERSION)

.PHONY: build run test lint unit fuzz clean test-sdk test-kafka bench

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/orderer ./cmd/orderer
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/kordctl ./cmd/kordctl

run: build
	$(BIN)/orderer dev --dir .kord-dev

# test: formatting, vet, staticcheck, the whole suite under the race detector (unit,
# conformance replay, integration on in-process Kafka over TCP), a short fuzz pass, then
# Hyperledger's own Go SDK against kord, and the suite on real Apache Kafka (test-kafka).
test: lint unit fuzz test-sdk test-kafka

unit:
	$(GO) test -race -count=1 -timeout 30m ./...

# test-kafka: kord against real Apache Kafka. integration/apache-kafka/install.sh fetches
# Apache Kafka 3.9 from Maven Central with Maven into .cache/apache-kafka (once; it fails,
# never skips, if it cannot), then the suite built with the apachekafka tag starts 3-broker
# clusters on 127.0.0.1 (KRaft, and once ZooKeeper mode) with the Fabric tutorials' broker
# settings and runs orderer processes on them: baseline and fault tests. Each fault's
# detection and recovery times are logged as FAULT-TIMING lines, repeated at the end.
KAFKA_TEST_TIMEOUT ?= 25m
test-kafka:
	GO=$(GO) KAFKA_TEST_TIMEOUT=$(KAFKA_TEST_TIMEOUT) integration/apache-kafka/test.sh

lint: $(TOOLS)/staticcheck
	@out=$$(find . -name '*.go' -not -path './.cache/*' | xargs gofmt -l); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags apachekafka ./integration/...
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/staticcheck -tags apachekafka ./integration/...

# Every parser of untrusted bytes has a fuzz target; each runs for FUZZTIME.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || \
	      { $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; exit 1; }; \
	  done; \
	done

# Hyperledger's fabric-sdk-go v1.0.0 against kord; a module of its own so that the SDK's old
# dependencies stay out of kord's go.mod.
test-sdk:
	cd integration/fabricsdk && $(GO) test -count=1 -timeout 15m ./...

# bench: the repository's benchmarks (block cutter, chain state machine, ledger, Broadcast
# filter chain, Deliver, end to end on kfake), printed as a table; raw output in
# .cache/bench.txt. BENCHTIME sets each benchmark's run (go test -benchtime).
BENCHTIME ?= 1s
bench:
	@mkdir -p .cache
	@$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m ./... > .cache/bench.txt 2>&1; \
	  st=$$?; grep -E '^(FAIL|---|panic)' .cache/bench.txt; awk -f bench/table.awk .cache/bench.txt; exit $$st

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf $(BIN) .cache .kord-dev
