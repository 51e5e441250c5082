# Student aid platform. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
JAEGER_BIN := .cache/bin/jaeger
SERVICES := application school-review bureau-review finance-confirmation payout data-comparison reporting
BUF := GOWORK=off $(GO) tool -modfile=tools/buf/go.mod buf
LINT := GOWORK=off $(GO) tool -modfile=tools/golangci/go.mod golangci-lint

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: generate
generate: ## regenerate protobuf, gRPC, gateway and OpenAPI code from proto/ (with the catalog's errors, the security scheme and the base URL filled in), and the error catalog of docs/api.md
	rm -f proto/gen/aid/*/v1/*.go proto/gen/openapi/*.json
	$(BUF) lint
	$(BUF) generate
	go test -count=1 -run '^TestOpenAPIDoc$$' ./internal/openapidoc -update
	go test -count=1 -run '^TestAPIDoc$$' ./pkg/apperr -update

.PHONY: nats-conf
nats-conf: ## regenerate the authorization block of deploy/nats/nats.conf from natsx.Identities
	$(GO) run ./cmd/devstack nats-conf deploy/nats/nats.conf

.PHONY: nats-streams
nats-streams: ## regenerate deploy/nats/streams/ (one R3 stream definition per stream) from natsx.Streams
	$(GO) test ./pkg/natsx/ -run '^TestStreamDefinitions$$' -count=1 -update

.PHONY: check-generated
check-generated: generate ## fail if the generated code differs from what is committed
	@git diff --exit-code -- proto/gen || (echo "generated code is stale: run make generate and commit" && exit 1)
	@test -z "$$(git status --porcelain -- proto/gen)" || (git status --porcelain -- proto/gen; echo "untracked generated files" && exit 1)

.PHONY: build
build: ## build the services, the gateway, the bank simulator and the tools into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(foreach s,$(SERVICES),./services/$(s)/cmd/$(s)) ./services/console/cmd/console ./cmd/banksim ./cmd/gateway ./cmd/devstack ./cmd/devtoken ./cmd/loadgen ./cmd/aidctl

$(JAEGER_BIN):
	@mkdir -p $(dir $@)
	cd tools/jaeger && GOWORK=off $(GO) build -o ../../$(JAEGER_BIN) github.com/jaegertracing/jaeger/cmd/jaeger

.PHONY: jaeger
jaeger: $(JAEGER_BIN) ## build Jaeger v2 from its Go module (about 6 minutes the first time)

.PHONY: run
run: build jaeger ## start PostgreSQL, NATS, Jaeger, the bank simulator, the services and the gateway (the one base URL); Ctrl-C stops all
	$(BIN)/devstack

.PHONY: vet
vet: ## go vet every package
	$(GO) vet ./...

.PHONY: lint
lint: ## golangci-lint (pinned in tools/golangci) with .golangci.yml; go mod tidy must leave go.mod and go.sum as they are
	$(LINT) run ./...
	$(GO) mod tidy -diff

.PHONY: test
test: build jaeger ## unit, integration and end-to-end tests against real PostgreSQL and NATS
	JAEGER_BIN=$(CURDIR)/$(JAEGER_BIN) AID_BIN_DIR=$(CURDIR)/$(BIN) $(BIN)/devstack exec -- $(GO) test -race -count=1 -timeout 20m ./...

.PHONY: test-short
test-short: build ## the fast loop: skips the end-to-end and fault tests
	$(BIN)/devstack exec -- $(GO) test -short -count=1 ./...

.PHONY: fault
fault: build ## the full crash/restart fault run (a few thousand applications)
	AID_BIN_DIR=$(CURDIR)/$(BIN) AID_FAULT_APPLICATIONS=3000 AID_FAULT_MIN_CHAOS_S=60 $(BIN)/devstack exec -- $(GO) test -count=1 -timeout 30m -run TestFault -v ./e2e/

.PHONY: bench
bench: build ## pgbench baseline, then the chain under loadgen; prints both and their ratio
	./scripts/bench.sh

.PHONY: soak
soak: build ## (writes .cache/soak.json) one hour at 250 applications/s with three replicas of every service; every platform process's memory (each replica, each NATS node, PostgreSQL by PSS) averaged over the last five minutes within 10 % of its average over the five minutes after the first ten; the test tools (loadgen, banksim, Jaeger kept at SOAK_JAEGER_TRACES traces) are reported, not judged (SOAK_N, SOAK_RATE, SOAK_REPLICAS, SOAK_BASELINE to change; not in CI)
	@mkdir -p .cache
	$(BIN)/loadgen -n $${SOAK_N:-900000} -rate $${SOAK_RATE:-250} -replicas $${SOAK_REPLICAS:-3} -soak-baseline $${SOAK_BASELINE:-10m} -jaeger-max-traces $${SOAK_JAEGER_TRACES:-1000} -timeout 90m -json $${SOAK_JSON:-.cache/soak.json}

.PHONY: bench-targets
bench-targets: build ## every figure of docs/performance.md against its target (100,000 at 300/s, REST at 200/s, a 50,000 batch; ~12 min)
	BENCH_TARGETS=1 BENCH_N=$${BENCH_N:-100000} BENCH_RATE=$${BENCH_RATE:-300} ./scripts/bench.sh

.PHONY: gobench
gobench: build ## Go benchmarks of the hot paths
	$(BIN)/devstack exec -- $(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: tidy
tidy: ## go mod tidy
	$(GO) mod tidy

.PHONY: ci
ci: check-generated vet lint test ## what CI runs
