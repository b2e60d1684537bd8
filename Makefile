# smsgw: `make dev` runs the gateway with everything it needs on this machine;
# `make test` runs every test against real servers. Both build their tools
# from the Go module proxy at pinned versions, once, into bin/.

GO               ?= go
TEMPORAL_VERSION := v1.5.1
WORKFLOWCHECK_VERSION := v0.6.0
FUZZTIME         ?= 5s
BIN              := $(CURDIR)/bin

include Makefile.generate

.PHONY: dev test unit e2e fuzz race vet workflowcheck build tools deploy-check bench bench-e2e clean record-histories soak soak-short dev-restart-check

## dev: run Temporal, the databases, the SMSC simulator and `smsgw all` (Ctrl-C stops all).
##      UPSTREAM=host:port binds to an external SMSC instead of the simulator.
dev: tools build
	UPSTREAM="$(UPSTREAM)" ./scripts/dev.sh

## test: vet, the workflow determinism check, unit and end-to-end tests, and
##       a short run of every fuzz target.
test: tools vet workflowcheck
	SMSGW_TEMPORAL_CLI=$(BIN)/temporal SMSGW_DEVDB=$(BIN)/devdb $(GO) test -count=1 -timeout 20m ./...
	cd dev && $(GO) test -count=1 -timeout 5m ./...
	$(MAKE) race
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

## race: the race detector over the packages with concurrency: the SMPP
##       session engine and its users, the outbox and the other stores, the
##       group commit, the receipt matcher, the client side and the codec
##       server.
RACE_PKGS := ./connectors/smppsession/... ./connectors/smppserver/... ./connectors/smppclient/... \
	./connectors/smpptest/... ./connectors/upstream/... ./store/... ./lifecycle/... ./payloadcrypt/...
race: tools
	SMSGW_TEMPORAL_CLI=$(BIN)/temporal SMSGW_DEVDB=$(BIN)/devdb $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

## unit: only the fast tests (no servers needed).
unit:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...
	cd dev && $(GO) vet ./...

build:
	$(GO) build -o $(BIN)/smsgw ./cmd/smsgw

## workflowcheck: the Temporal SDK's determinism checker over the workflow code.
workflowcheck: $(BIN)/workflowcheck
	$(BIN)/workflowcheck ./workflows/...

$(BIN)/workflowcheck:
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

## tools: the Temporal CLI and the dev databases, built once.
tools: $(BIN)/temporal $(BIN)/devdb

$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)

$(BIN)/devdb: dev/go.mod dev/go.sum $(wildcard dev/cmd/devdb/*.go)
	cd dev && $(GO) build -o $(BIN)/devdb ./cmd/devdb

## fuzz: run each fuzz target for FUZZTIME (go test allows one target per run).
## A failing input is written to the package's testdata/fuzz and replayed
## first by the second run, so a real failure fails twice; a fuzzing run that
## merely broke down (a worker lost on a loaded machine) passes the second time.
fuzz:
	@set -e; log=$$(mktemp); for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$t"; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1; then \
	      grep -v '^fuzz: elapsed' $$log | tail -20; \
	      echo "fuzz $$pkg $$t failed; running it again"; \
	      $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || { echo "FAIL: $$pkg $$t (the failing input is in $$dir/testdata/fuzz/$$t)"; exit 1; }; \
	    fi; \
	  done; \
	done; rm -f $$log

## bench: Go benchmarks of the hot paths.
bench:
	SMSGW_TEMPORAL_CLI=$(BIN)/temporal SMSGW_DEVDB=$(BIN)/devdb $(GO) test -run '^$$' -bench . -benchtime 2s ./...

## bench-e2e: the bare workflow, the make dev stack under REST load, the bare
##            workflow, the stack under SMPP load, the bare workflow, in one
##            run, as one table (N=2000 CONCURRENCY=32 RATE=0).
bench-e2e: tools
	./scripts/bench-e2e.sh

## dev-restart-check: make dev, three messages, make dev stopped and started
##                    again: the messages and their events read back whole.
dev-restart-check: tools build
	./scripts/dev-restart-check.sh

## soak: two replicas of every role as processes of their own, Temporal,
##       MongoDB-wire and MariaDB servers and two SMSC simulators, under load
##       from every entry point while faults are injected in turn; a checker
##       then judges every message (docs/reliability.md). About 11 minutes.
##       soak-short: the same with the main faults, about 2 minutes.
soak: tools build
	$(BIN)/smsgw soak -profile full -temporal-cli $(BIN)/temporal -devdb $(BIN)/devdb

soak-short: tools build
	$(BIN)/smsgw soak -profile short -temporal-cli $(BIN)/temporal -devdb $(BIN)/devdb

## deploy-check: lint and render the Helm chart, strict-decode the manifests, check Terraform, alerts and dashboard.
deploy-check:
	./scripts/deploy-check.sh

clean:
	rm -rf .data $(BIN)/smsgw

## record-histories: run the end-to-end tests and keep one history of every
##       workflow path they take in workflows/testdata/histories, which
##       TestReplayRecordedHistories replays. Run it after a deliberate,
##       versioned change of a workflow and commit the new files beside the
##       old ones (never delete a history while workflows of its shape may
##       still be running somewhere).
record-histories: tools
	SMSGW_RECORD_HISTORIES=$(CURDIR)/workflows/testdata/histories SMSGW_TEMPORAL_CLI=$(BIN)/temporal SMSGW_DEVDB=$(BIN)/devdb \
	  $(GO) test -count=1 -timeout 20m -run 'EndToEnd|LoadTool' ./cmd/smsgw
	@ls workflows/testdata/histories/*.json | xargs -n1 basename | sed "s/-.*//" | sort | uniq -c
