# paddock's entry points. `make run` and `make test` are all a fresh machine
# with Go (and node, for the cross-language vector check) needs.

GO        ?= go
TOOLS     := $(CURDIR)/.tools/bin
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# Packages whose benchmarks `make bench` runs, with ratios computed in one run.
BENCH_PKGS ?= ./proto ./bench/wire ./feed/jsonscan ./feed/session ./feed/binance ./feed/bybit ./book ./risk ./sandbox ./envmgr ./envmgr/natskv ./envmgr/local ./envmgr/schedule

.PHONY: run build test vet fmt-check go-test alloc-test js-test tf-fmt tf-tools test-module aws-provider bench bench-replay bench-e2e bench-tf fuzz lint proto-gen

## run: the main job on embedded defaults (no cloud account, no internet):
## the venue simulator, the feed and its embedded NATS server, the manager and
## the example environment, until Ctrl-C (which exits 0). It builds
## bin/paddock first, which the commands it prints use.
run: build
	@./bin/paddock dev

## build: bin/paddock, stamped with the checkout's revision (paddock version).
build:
	$(GO) build -buildvcs=auto -o bin/paddock ./cmd/paddock

## test: everything CI checks.
test: vet fmt-check tf-fmt go-test alloc-test js-test

# Terraform for the provisioner's tests: tofu or terraform from PATH, else
# Terraform built from source into .tools/ (once; seconds from the Go build
# cache later); the hashicorp/local provider built into a filesystem mirror,
# so nothing is fetched from a registry. The mirror's version number only
# names the entry: the provider is the module proxy's current source.
TF_MIRROR := $(CURDIR)/.tools/tf-mirror
TF_LOCAL  := $(CURDIR)/.tools/providers/terraform-provider-local
export PADDOCK_TF_MIRROR := $(TF_MIRROR)
export PADDOCK_TF_BINARY := $(shell command -v tofu || command -v terraform || echo $(TOOLS)/terraform)

tf-tools:
	@test -x "$(PADDOCK_TF_BINARY)" || GOBIN=$(TOOLS) $(GO) install github.com/hashicorp/terraform@v1.5.7
	@test -x $(TF_LOCAL) || GOBIN=$(dir $(TF_LOCAL)) $(GO) install github.com/terraform-providers/terraform-provider-local@latest
	@for host in registry.terraform.io registry.opentofu.org; do \
	  d=$(TF_MIRROR)/$$host/hashicorp/local/0.0.1/linux_amd64; mkdir -p $$d; \
	  cp -u $(TF_LOCAL) $$d/terraform-provider-local_v0.0.1; \
	done

# The real AWS provider is large (~1.3 GB) and slow to build (~40 min, ~12 GB
# RAM), so it is cached outside the checkout and `make test-module` runs only
# where it is present; `make aws-provider` builds it once.
AWS_PROVIDER_CACHE ?= $(HOME)/.cache/paddock/terraform-provider-aws
AWS_PROVIDER_REF   ?= v1.60.1-0.20260602190131-5f2286d6d836

aws-provider:
	@test -x $(AWS_PROVIDER_CACHE) || { mkdir -p $(dir $(AWS_PROVIDER_CACHE)) && \
	  GOBIN=$(dir $(AWS_PROVIDER_CACHE)) $(GO) install github.com/hashicorp/terraform-provider-aws@$(AWS_PROVIDER_REF); }

## test-module: modules/dev-trading-env with the real AWS provider against moto (validate, plan, apply, re-plan, destroy).
test-module: tf-tools
	@test -x $(AWS_PROVIDER_CACHE) || { echo "no cached AWS provider at $(AWS_PROVIDER_CACHE): run make aws-provider"; exit 1; }
	PADDOCK_TF_AWS_PROVIDER=$(AWS_PROVIDER_CACHE) $(GO) test -count=1 -v -run TestModuleAgainstMoto ./envmgr/terraform/

## bench-tf: the Terraform driver's overhead over the bare CLI, in one run.
bench-tf: tf-tools
	$(GO) test -run '^$$' -bench Operation -benchtime 5x ./envmgr/terraform/

# Terraform's own formatting check over modules/ and test modules.
tf-fmt: tf-tools
	TF_CLI_CONFIG_FILE=/dev/null $(PADDOCK_TF_BINARY) fmt -recursive -check -diff modules/
	TF_CLI_CONFIG_FILE=/dev/null $(PADDOCK_TF_BINARY) fmt -recursive -check -diff envmgr/terraform/testdata/
	TF_CLI_CONFIG_FILE=/dev/null $(PADDOCK_TF_BINARY) fmt -recursive -check -diff envmgr/daemon/testdata/

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

go-test: tf-tools
	$(GO) test -race -count=1 ./...

# Zero-allocation locks, without -race (its instrumentation allocates).
alloc-test:
	$(GO) test -count=1 -run 'Allocs' ./...

# The Node.js decoder is checked against the same vectors as the Go code.
js-test:
	node --test proto/js/

## bench: hot-path benchmarks, with each codec compared to paddock's in the same run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(BENCH_PKGS) | $(GO) run ./bench/cmd/benchratio -base codec=paddock

## bench-replay: recording and replay figures (disk bytes per message, ingest with and without the recorder, replay throughput, pacing, time to the first message).
bench-replay:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./replay

## bench-e2e: simulator -> feed -> NATS -> 1/10/100 subscribers, against raw NATS in the same run.
bench-e2e:
	@mkdir -p bench/results
	$(GO) run ./bench/e2e -subscribers process | tee bench/results/e2e-process.txt
	$(GO) run ./bench/e2e -subscribers inprocess | tee bench/results/e2e-inprocess.txt

## fuzz: every fuzz target for FUZZTIME each (seed corpora live in testdata/fuzz).
## FUZZTIME is a duration (10s) or a count of executions (20000x, what CI uses).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## lint: staticcheck, installed into .tools/ on first use.
lint:
	@test -x $(TOOLS)/staticcheck || GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(TOOLS)/staticcheck ./...

## proto-gen: regenerate the protobuf types used only by the comparison benchmarks.
proto-gen:
	@test -x $(TOOLS)/protoc-gen-go || GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	cd bench/wire/wirepb && PATH=$(TOOLS):$$PATH protoc --go_out=. --go_opt=paths=source_relative wire.proto
