# make test runs every check; CI runs exactly that through .ci/run.
GO      ?= go
FUZZTIME ?= 10s
SEEDS   ?= 10000

.PHONY: test fmt-check vet unit fuzz-smoke bench sim tla interop

test: fmt-check vet interop unit fuzz-smoke tla
	@echo "make test: all checks passed"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -tags masterless_trace -run 'Trace|Deterministic' ./fsm ./sim

# A short run of every fuzz target, seeded from testdata/fuzz corpora.
fuzz-smoke:
	$(GO) test -run '^$$' -fuzz '^FuzzParseFrame$$' -fuzztime $(FUZZTIME) ./wire
	$(GO) test -run '^$$' -fuzz '^FuzzParsePreamble$$' -fuzztime $(FUZZTIME) ./wire
	$(GO) test -run '^$$' -fuzz '^FuzzLegacyParse$$' -fuzztime $(FUZZTIME) ./wire
	$(GO) test -run '^$$' -fuzz '^FuzzNodeFrames$$' -fuzztime $(FUZZTIME) ./fsm

# Installs masterless@0.4.1 for the ./interop tests (run by unit). Prints a
# SKIP line without node/npm; fails under CI=true.
interop:
	bash interop/install.sh

# Any number of simulator seeds; ends with "sim: N seeds, M failed".
sim:
	$(GO) run ./sim/cmd/simsweep -seeds $(SEEDS)

# The TLA+ model under TLC: every configuration with its expected outcome,
# the negative controls, and trace validation. Ends with "tla: N passed, M failed".
tla:
	bash tla/run.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
