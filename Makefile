# Eindr backend. `make run` starts the whole stack; `make test` sets up from nothing and tests.
VENV ?= .venv
PY := $(VENV)/bin/python
USER ?= alice
PYTEST_WORKERS ?= 2

.PHONY: setup run test test-fast bench migrate token lint compose-check clean

setup:
	./scripts/bootstrap.sh

run: setup
	$(PY) scripts/devstack.py

test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --timeout 900 -q $(PYTEST_ARGS)

bench: setup
	$(PY) scripts/bench.py

migrate: setup
	$(PY) -m eindr_common.migrations $(wildcard services/*/migrations)

token: setup
	@$(PY) -m eindr_gateway.devtoken $(USER)

lint: setup
	$(VENV)/bin/ruff check .

compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf .local
