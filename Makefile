# Developer entry points. `make run` and `make test` are the two commands the README promises.
VENV ?= .venv
PY := $(VENV)/bin/python
BUF ?= node_modules/.bin/buf

.PHONY: venv run test test-quick lint format proto proto-check sync-client buf-lint bench bench-quick clean

venv: ## create the virtualenv with runtime and dev dependencies
	bash scripts/bootstrap.sh

run: ## run the service on the embedded default (SQLite + ./.mirror-data)
	bash scripts/run.sh

test: ## install what the tests need (registry, skopeo, PostgreSQL, buf) and run them all
	bash scripts/test.sh -q $(PYTEST_ARGS)

test-quick: venv ## unit tests only: no registry, no PostgreSQL
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

lint: venv ## ruff + generated-stub and generated-client drift + buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/unasync_client.py --check
	$(MAKE) proto-check
	$(MAKE) buf-lint

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

proto: venv ## regenerate protos/mirror_pb2*.py from protos/mirror.proto
	$(PY) -m grpc_tools.protoc -Iprotos=protos --python_out=. --pyi_out=. --grpc_python_out=. protos/mirror.proto

sync-client: venv ## regenerate client/sync_client.py from the asyncio client/client.py
	$(PY) scripts/unasync_client.py

proto-check: ## fail when the committed stubs drift from the proto
	$(MAKE) -s proto
	git diff --exit-code -- protos/

$(BUF):
	npm install --no-audit --no-fund --silent

buf-lint: $(BUF) ## buf lint (STANDARD + COMMENTS), see buf.yaml for the one rule left out
	$(BUF) lint

bench: venv ## sync and serving benchmarks (see benchmarks/README.md)
	bash scripts/test-deps.sh
	bash scripts/bench-deps.sh
	bash scripts/with-postgres.sh $(PY) -m benchmarks $(BENCH_ARGS)
	bash scripts/with-postgres.sh $(PY) -m benchmarks.gc

bench-quick: venv
	bash scripts/test-deps.sh
	bash scripts/bench-deps.sh
	bash scripts/with-postgres.sh $(PY) -m benchmarks --quick $(BENCH_ARGS)
	bash scripts/with-postgres.sh $(PY) -m benchmarks.gc --blobs 2000

clean:
	rm -rf $(VENV) .mirror-data node_modules
