# Eindr backend. `make run` starts the whole stack; `make test` sets up from nothing and tests.
VENV ?= .venv
PY := $(VENV)/bin/python
USER ?= alice
PYTEST_WORKERS ?= 2

.PHONY: setup run test test-coqui bench migrate token lint compose-check clean

setup:
	./scripts/bootstrap.sh

run: setup
	$(PY) scripts/devstack.py

test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --timeout 900 -q $(PYTEST_ARGS)

# Coqui needs its own torch (2.9.1 + torchaudio, ~7.6 GB): its own venv, its own suite.
test-coqui: setup
	[ -x .venv-coqui/bin/python ] || python3 -m venv .venv-coqui
	.venv-coqui/bin/pip install -q torch==2.9.1 torchaudio==2.9.1 'coqui-tts[codec]==0.28.0' six==1.17.0
	.venv-coqui/bin/pip install -q -e libs/common -e 'inference/tts[testing]'
	.venv-coqui/bin/python -m pytest -q inference/tts/tests_coqui/coqui_suite.py

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
