# The README's two commands are `make demo` and `make test`.
# Both provision what is missing first (Debian packages, Python's jsonschema,
# kube-apiserver and etcd built from pinned Go modules; see testenv/provision.sh).

CARGO ?= cargo

.PHONY: provision test demo lint fmt clean-cache

provision:
	bash testenv/provision.sh

## Runs the whole test suite: unit, property and integration tests (the
## integration tests start a real kube-apiserver and etcd on loopback).
test: provision
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

## Starts the local environment and keeps it up until Ctrl-C.
demo: provision
	$(CARGO) run --quiet -p apisix-operator-testenv --bin apisix-operator-testenv -- up

lint: provision
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Removes the cached control-plane binaries (the next provision rebuilds them).
clean-cache:
	rm -rf "$${APISIX_OPERATOR_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/apisix-operator}"
