# The two commands of the README: `make demo` starts the platform and shows it working; `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install demo test lint typecheck unit integration bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/aiwp demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n 2 --dist loadfile -m "not exclusive"
	$(BIN)/pytest -m exclusive

unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not e2e"

integration: $(STAMP)
	$(BIN)/pytest -m integration

bench: $(STAMP)
	$(BIN)/python -m tests.bench.append
	$(BIN)/python -m tests.bench.pipeline
	$(BIN)/python -m tests.bench.api
	$(BIN)/python -m tests.bench.engine
	$(BIN)/python -m tests.bench.replay

clean:
	rm -rf $(VENV) .aiwp .mypy_cache .ruff_cache .hypothesis
