# The two commands the README names: `make demo` and `make test`.
# Both create .venv and install the project on first use (and when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TESSERA_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
export TESSERA_TEST_DATABASE_URL

.PHONY: demo test lint typecheck migrations-check test-sqlite test-postgres fuzz install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tessera demo

test: lint typecheck migrations-check test-sqlite test-postgres

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	TESSERA_TESTING=1 $(BIN)/mypy

migrations-check: $(STAMP)
	TESSERA_TESTING=1 DATABASE_URL= $(BIN)/tessera makemigrations --check --dry-run

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite =="
	DATABASE_URL= $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@if $(BIN)/python -m tests.pg_available; then \
		echo "== test suite on PostgreSQL ($(TESSERA_TEST_DATABASE_URL)) =="; \
		DATABASE_URL=$(TESSERA_TEST_DATABASE_URL) $(BIN)/pytest $(PYTEST_ARGS); \
	else \
		test "$$TESSERA_REQUIRE_POSTGRES" != "1" || { echo "PostgreSQL is required (TESSERA_REQUIRE_POSTGRES=1) but unreachable"; exit 1; }; \
	fi

# The long fuzz run (docs/testing.md): the schemathesis and Hypothesis tests with many
# more examples and longer scenarios, on SQLite and, when it answers, on PostgreSQL.
TESSERA_FUZZ_EXAMPLES ?= 200
FUZZ_TESTS := tests/reliability/test_api_fuzz.py tests/reliability/test_api_fuzz_stateful.py \
	tests/reliability/test_event_properties.py

fuzz: $(STAMP)
	@echo "== fuzz on SQLite ($(TESSERA_FUZZ_EXAMPLES) examples) =="
	DATABASE_URL= TESSERA_FUZZ_EXAMPLES=$(TESSERA_FUZZ_EXAMPLES) $(BIN)/pytest -s $(PYTEST_ARGS) $(FUZZ_TESTS)
	@if $(BIN)/python -m tests.pg_available; then \
		echo "== fuzz on PostgreSQL ($(TESSERA_TEST_DATABASE_URL)) =="; \
		DATABASE_URL=$(TESSERA_TEST_DATABASE_URL) TESSERA_FUZZ_EXAMPLES=$(TESSERA_FUZZ_EXAMPLES) \
			$(BIN)/pytest -s $(PYTEST_ARGS) $(FUZZ_TESTS); \
	fi

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
