# dualtrack: `make demo` runs the main job, `make test` runs the tests. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean infra-up infra-down

setup: $(STAMP) infra/kafka/lib/.complete
	@$(BIN)/dualtrack infra fetch

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "dualtrack needs Python 3.11 or later (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

infra/kafka/lib/.complete: infra/kafka/pom.xml
	infra/kafka/fetch.sh

demo: setup
	$(BIN)/dualtrack demo

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m benchmarks.run $(ARGS)

infra-up: setup
	$(BIN)/dualtrack infra up

infra-down:
	$(BIN)/dualtrack infra down

clean:
	-$(BIN)/dualtrack infra down
	rm -rf var out
