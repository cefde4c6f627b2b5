# Two commands do everything on a fresh clone: `make run` (the main job) and `make test`.
# Each creates or updates the virtualenv in .venv first.
VENV        ?= .venv
PYTHON      ?= python3
TORCH_SPEC  ?= torch==2.13.0
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.mgedb-installed
PYTEST_ARGS ?=

LINT_TOOL   := tools/cypher-lint
LINT_STAMP  := $(LINT_TOOL)/node_modules/.package-lock.json

.PHONY: venv run test test-all lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test,dev]"
	touch $(STAMP)

# The Neo4j Cypher linter (Node.js, offline once installed); skipped with a note without npm.
$(LINT_STAMP): $(LINT_TOOL)/package-lock.json
	@if command -v npm >/dev/null; then \
		(cd $(LINT_TOOL) && npm ci --no-audit --no-fund --loglevel=error) \
		|| echo "npm ci failed: the Cypher lint test will be skipped"; \
	else echo "npm not found: the Cypher lint test will be skipped"; fi

venv: $(STAMP)

run: $(STAMP)  ## the main job on the embedded store (quick preset)
	$(BIN)/mgedb study --quick

test: $(STAMP) $(LINT_STAMP)  ## the default test suite (< 15 min on 2 cores)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-all: $(STAMP) $(LINT_STAMP)  ## including slow tests
	$(BIN)/python -m pytest -q --runslow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check mgedb tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/encode.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(LINT_TOOL)/node_modules
