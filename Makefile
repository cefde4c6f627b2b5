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

NEO4J       := $(BIN)/python tools/neo4j/server.py

.PHONY: venv run test test-all lint bench clean neo4j neo4j-stop

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test,dev,ray]"
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

# With Java 17/21 and Maven (and NEO4J_URI unset), `make test` starts a throw-away Neo4j + GDS for
# the live tests and always stops it (tools/neo4j/server.py run); without them those tests skip.
test: $(STAMP) $(LINT_STAMP)  ## the default test suite (< 20 min on 2 cores)
	$(NEO4J) run -- $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-all: $(STAMP) $(LINT_STAMP)  ## including slow tests
	$(NEO4J) run -- $(BIN)/python -m pytest -q --runslow $(PYTEST_ARGS)

# A local Neo4j 5.26 + GDS 2.13 in the background (no Docker): `make neo4j && . .neo4j/env`.
neo4j: $(STAMP)
	$(NEO4J) start

neo4j-stop:
	python3 tools/neo4j/server.py stop

lint: $(STAMP)
	$(BIN)/ruff check mgedb tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/encode.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .neo4j tools/neo4j/target build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(LINT_TOOL)/node_modules
