# minerguard — `make help` lists the targets.
GO      ?= go
PKGS    := ./...
# Count-based budgets: a duration-based -fuzztime races Go's fuzz coordinator at the deadline
# (golang/go#75804, unfixed in go1.26) and fails a target that found nothing with "context
# deadline exceeded". A count has no deadline to race; minimization is bounded by count too.
FUZZTIME ?= 10000x
FUZZMINTIME ?= 500x
# What --version, `minerguard version` and minerguard_build_info say (internal/version).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/minerguard/minerguard/internal/version.version=$(VERSION) \
            -X github.com/minerguard/minerguard/internal/version.revision=$(REVISION)
# Single-goroutine load tests that skip under the race detector (nothing for it to find, 30×
# slower): make test runs them without it.
NORACE_TESTS := ^TestR1FlowFlood$$
PREFIX   ?= /usr/local
DESTDIR  ?=

.PHONY: chart-check manifests manifests-print image tools envtest-assets
.PHONY: help build install docker ldflags test test-short fuzz fuzz-ci lint generate generate-bpf generate-xdp generate-check intel golden demo

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/minerguard, stamped with VERSION and REVISION
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/minerguard ./cmd/minerguard

ldflags: ## print the -ldflags that stamp the version (for other build scripts)
	@echo '$(LDFLAGS)'

install: build ## install the binary, the systemd unit, an example /etc/minerguard/sensor.yaml (kept if present) and a logrotate snippet
	install -D -m 0755 bin/minerguard $(DESTDIR)$(PREFIX)/bin/minerguard
	install -D -m 0644 deploy/systemd/minerguard.service $(DESTDIR)/etc/systemd/system/minerguard.service
	install -D -m 0644 deploy/systemd/minerguard.logrotate $(DESTDIR)/etc/logrotate.d/minerguard
	@if [ -e $(DESTDIR)/etc/minerguard/sensor.yaml ]; then echo "kept $(DESTDIR)/etc/minerguard/sensor.yaml"; \
	else install -D -m 0640 deploy/systemd/sensor.yaml $(DESTDIR)/etc/minerguard/sensor.yaml; fi

docker: ## build the container image minerguard:VERSION, stamped like build
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t minerguard:$(VERSION) .

demo: ## replay the bundled captures and print the alerts as a table
	$(GO) run ./cmd/minerguard replay -o text testdata/captures/*.pcap*

test: ## vet, race-enabled unit and golden tests, then every fuzz target briefly
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -count=1 -run '$(NORACE_TESTS)' ./engine/
	$(MAKE) fuzz-ci

test-short: ## a quick first try: vet and the unit and golden tests (-short: no real-kernel tests, no race detector, no fuzzing)
	$(GO) vet $(PKGS)
	$(GO) test -short -count=1 $(PKGS)

fuzz-ci: ## run each fuzz target for FUZZTIME executions (CI: a few seconds each)
	@# One instrumented test binary per package (go test -c -fuzz), run once per target from the
	@# package's directory with go test's own flags and fuzz cache: the same runs as
	@# go test -fuzz per target, without linking a package's binary again for each of its targets.
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cache=$$($(GO) env GOCACHE)/fuzz; \
	$(GO) list -f '{{.ImportPath}} {{.Dir}}' $(PKGS) | while read -r pkg dir; do \
	  fzs=$$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$dir/*_test.go 2>/dev/null | awk '{print $$2}'); \
	  [ -n "$$fzs" ] || continue; \
	  $(GO) test -c -fuzz=. -o "$$tmp/fuzz.test" $$pkg; \
	  for fz in $$fzs; do \
	    echo "fuzz $$pkg $$fz"; \
	    (cd $$dir && "$$tmp/fuzz.test" -test.run='^$$' -test.fuzz="^$$fz$$" -test.fuzztime=$(FUZZTIME) \
	      -test.fuzzminimizetime=$(FUZZMINTIME) -test.fuzzcachedir="$$cache/$$pkg" -test.timeout=10m) \
	      >/tmp/minerguard-fuzz.log 2>&1 || { cat /tmp/minerguard-fuzz.log; exit 1; }; \
	  done; \
	done

fuzz: ## fuzz every target for 2M executions each
	$(MAKE) fuzz-ci FUZZTIME=2000000x FUZZMINTIME=60s

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)

generate: intel ## regenerate generated files (intel lists; go generate; the BPF objects need clang)
	$(GO) generate $$($(GO) list $(PKGS) | grep -vE '/(xdp|capture)$$')
	$(MAKE) generate-bpf

# The BPF objects bpf2go builds: xdp/bpf_bpfel.{go,o} (XDP enforcement) and
# capture/bypass_bpfel.{go,o} (the capture socket filter); both include xdp/mg_bpf.h.
BPF_DIRS := xdp capture

# The committed objects were built with Debian 12's clang 14; another clang version may emit
# a different (equally valid) object, which generate-check reports.
generate-bpf: ## recompile the BPF C (xdp/, capture/) with bpf2go (skipped without clang)
	@if command -v clang >/dev/null; then for d in $(BPF_DIRS); do (cd $$d && $(GO) generate) || exit 1; done; \
	else echo "clang not found: BPF objects ($(BPF_DIRS)) left as committed" >&2; fi

generate-xdp: generate-bpf ## (old name of generate-bpf)

generate-check: ## regenerate the BPF objects; fail if they differ from the committed ones
	@if ! command -v clang >/dev/null; then echo "clang not found: skipping generate-check" >&2; exit 0; fi; \
	for d in $(BPF_DIRS); do (cd $$d && $(GO) generate) || exit 1; done; \
	git diff --exit-code --stat -- $(BPF_DIRS) || \
	{ echo "generated BPF files differ from their C sources: run make generate and commit them" >&2; exit 1; }

intel: ## rebuild intel/builtin from ../shared/intel
	$(GO) run ./intel/curate -in ../shared/intel -out intel/builtin

golden: ## rewrite the golden alert files after an intended change
	$(GO) test ./cmd/minerguard -run TestGolden -update

# Deployment checks. helm, kubeconform and crane are built from Go modules (no prebuilt
# downloads) into $${XDG_CACHE_HOME:-~/.cache}/minerguard-tools, keyed by version; the first build
# takes minutes, later runs reuse them. kubeconform's schemas come from the k8s.io/kubernetes
# module's OpenAPI document (deploy/tools/k8sschema).
HELM  ?= $$(deploy/tools/build.sh helm)
IMAGE ?= ghcr.io/minerguard/minerguard
IMAGE_TAG ?= $$(sed -n 's/^appVersion: "\(.*\)"/\1/p' deploy/helm/minerguard/Chart.yaml)

tools: ## build helm, kubeconform, crane and the Kubernetes schemas into the tools cache
	@for t in helm kubeconform crane k8s-schemas; do deploy/tools/build.sh $$t; done

envtest-assets: ## build the real kube-apiserver and etcd for the cluster profile tests (cold: ~20 min)
	@for t in etcd kube-apiserver; do deploy/tools/build.sh $$t; done

chart-check: tools ## helm lint + template + kubeconform of the chart, CRD examples, image build and start
	MINERGUARD_REQUIRE_TOOLS=1 $(GO) test -count=1 -run 'TestChart|TestManifests|TestImage' ./deploy/

manifests: ## regenerate deploy/kubernetes/minerguard.yaml from the chart (defaults)
	@mkdir -p deploy/kubernetes
	$(MAKE) -s manifests-print > deploy/kubernetes/minerguard.yaml

manifests-print:
	@echo "# Generated by make manifests from deploy/helm/minerguard (its defaults): edit the chart, not this."
	@echo "# kubectl apply -f deploy/kubernetes/minerguard.yaml; or helm install (README \"Kubernetes\")."
	@printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: minerguard\n'
	@$(HELM) template minerguard deploy/helm/minerguard --namespace minerguard --include-crds

image: ## build the image into bin/minerguard-image.tar (OCI layout, no daemon): push with crane push
	@mkdir -p bin
	deploy/image/build.sh bin/minerguard-image.tar $(IMAGE_TAG)

include bench/bench.mk
