# Every target sets itself up when needed and is quick when it already is.
#   make demo   - run an edit job on a sample clip through both gRPC services
#   make test   - run the test suite (fast tests; `make test-slow` for all)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Override for another platform, e.g. TORCH_SPEC="torch==2.9.1 torchvision==0.24.1"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# The Node.js client's packages (its test is skipped where node/npm are not installed).
NODE_STAMP := clients/node/node_modules/.package-lock.json
NPM := $(shell command -v npm 2>/dev/null)
PROTOS := $(wildcard proto/videoedit/v1/*.proto)
ORCHESTRATOR_PORT ?= 50051
MODELSERVER_PORT ?= 50052

.PHONY: setup node-setup proto serve demo test test-slow bench loadtest lint clean

setup: $(STAMP) node-setup

node-setup: $(if $(NPM),$(NODE_STAMP))

$(NODE_STAMP): clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error

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

# Model server + orchestrator in the foreground; Ctrl-C stops both.
serve: $(STAMP)
	trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	$(VENV)/bin/videoedit-modelserver --port $(MODELSERVER_PORT) & \
	VIDEOEDIT_MODEL_SERVERS=localhost:$(MODELSERVER_PORT) \
		$(VENV)/bin/videoedit-orchestrator --port $(ORCHESTRATOR_PORT) & \
	wait

demo: $(STAMP)
	$(VENV)/bin/videoedit demo

test: $(STAMP) node-setup
	$(PY) -m pytest

test-slow: $(STAMP) node-setup
	$(PY) -m pytest -m ''

bench: $(STAMP)
	$(PY) -m bench

loadtest: $(STAMP)
	$(PY) -m bench.load

lint: $(STAMP)
	$(VENV)/bin/buf lint
	$(PY) -m compileall -q orchestrator modelserver clients tests

clean:
	rm -rf $(VENV) outputs .pytest_cache
