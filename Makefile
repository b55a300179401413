# The README's two commands are `make demo` and `make test`.
# Both provision what is missing first (Debian packages, Python's jsonschema,
# kube-apiserver and etcd built from pinned Go modules; see testenv/provision.sh).

CARGO ?= cargo

.PHONY: provision test demo env bench chaos lint fmt deploy-manifests clean-cache cluster cluster-down test-cluster

provision:
	bash testenv/provision.sh

## Runs the whole test suite: unit, property and integration tests (the
## integration tests start a real kube-apiserver and etcd on loopback).
test: provision
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

## Every benchmark, full size: planner and translation (criterion), bulk
## etcd writes, failover, and the real binary end to end at 1,000 and 10,000
## ApisixRoutes + 2,000 Ingresses (E2E_SCALES=1000,10000,100000 adds 100k),
## which writes benches/results/e2e.json and e2e.md, and the admission
## webhook under 150 concurrent creates (benches/results/admission.md).
## Long: about half an hour.
bench: provision
	$(CARGO) build --release --quiet -p apisix-operator
	$(CARGO) bench -p apisix-operator-benches

## The chaos suite's long form (root: it makes network namespaces): every
## scenario of chaos-tests/tests/real_binary/ once per seed of CHAOS_SEEDS,
## one at a time, then the table (chaos-tests/results/chaos.md, which the
## README shows) and every report (chaos.json). `make test` runs each
## scenario once, for seed 1. About 15 minutes for three seeds.
CHAOS_SEEDS ?= 1 2 3
CHAOS_REPORTS = $(CURDIR)/target/chaos-reports
chaos: provision
	rm -rf $(CHAOS_REPORTS)
	for seed in $(CHAOS_SEEDS); do \
	  CHAOS_SEED=$$seed CHAOS_REPORT_DIR=$(CHAOS_REPORTS) $(CARGO) test --quiet -p apisix-operator-chaos-tests --test real_binary -- --test-threads=1 || exit 1; \
	done
	mkdir -p chaos-tests/results
	$(CARGO) run --quiet -p apisix-operator-chaos-tests --bin chaos-report -- $(CHAOS_REPORTS) --json chaos-tests/results/chaos.json > chaos-tests/results/chaos.md
	cat chaos-tests/results/chaos.md

## The operator's main job end to end, locally: starts kube-apiserver and
## etcd, applies examples/, runs three replicas, shows the leader, the keys
## written, a leader kill and the takeover; stays up until Ctrl-C.
## `make demo ARGS=--once` exits after the show (CI runs that).
demo: provision
	$(CARGO) build --quiet -p apisix-operator -p apisix-operator-demo
	$(CARGO) run --quiet -p apisix-operator-demo -- --operator target/debug/apisix-operator $(ARGS)

## Only the local environment (no operator), until Ctrl-C.
env: provision
	$(CARGO) run --quiet -p apisix-operator-testenv --bin apisix-operator-testenv -- up

lint: provision
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	shellcheck -x -P SCRIPTDIR testenv/*.sh testenv/cluster/*.sh chaos-tests/cluster/*.sh .ci/run

## A one-node cluster on this machine (root): kube-apiserver, etcd,
## kube-controller-manager and kube-scheduler on the host; containerd, the
## kubelet and kube-proxy in the network namespace apisix-node (see
## testenv/cluster/cluster.sh). Idempotent; KUBECONFIG is printed.
cluster: provision
	bash testenv/provision-cluster.sh
	bash testenv/cluster/cluster.sh up

## Stops it and removes every process, mount, namespace, link and rule it made.
cluster-down:
	bash testenv/cluster/cluster.sh down

## The chart's three replicas as pods on a fresh cluster (see
## testenv/cluster/test.sh), then the cluster is removed. ROUNDS sets the
## workload's changes during the rolling upgrade; OPERATOR_BINARY the binary
## put in the image (default: the release build, built first).
ROUNDS ?= 20
test-cluster: provision
	bash testenv/provision-cluster.sh
	[ -n "$$OPERATOR_BINARY" ] || $(CARGO) build --release --quiet -p apisix-operator
	$(CARGO) build --quiet -p apisix-operator-testenv -p apisix-operator-chaos-tests
	bash testenv/cluster/cluster.sh down
	bash testenv/cluster/cluster.sh up
	bash testenv/cluster/test.sh $(ROUNDS); status=$$?; bash testenv/cluster/cluster.sh down; exit $$status

fmt:
	$(CARGO) fmt --all

## Regenerates what deploy/ derives from the Helm chart, crds/ and examples/:
## the kustomize base, the chart's and the bundle's CRDs, the OLM bundle's
## ClusterServiceVersion (install strategy, permissions, owned CRDs, examples).
## The install tests fail while these are stale.
deploy-manifests: provision
	$(CARGO) run --quiet -p apisix-operator-testenv --bin apisix-operator-testenv -- render-deploy

## Removes the cached control-plane binaries (the next provision rebuilds them).
clean-cache:
	rm -rf "$${APISIX_OPERATOR_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/apisix-operator}"
