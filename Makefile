# Alchemy: `make run` to start, `make test` to check everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
SCALE ?= full
STAMP := $(VENV)/.installed

.PHONY: install run test test-postgres test-all lint format bench bench-instructions soak migrate clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0

run: migrate
	$(PY) manage.py ensure_admin --url http://$(HOST):$(PORT)/
	$(BIN)/daphne -b $(HOST) -p $(PORT) alchemy_site.asgi:application

test: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run
	$(BIN)/pytest

test-postgres: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(BIN)/pytest

test-all: test test-postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(PY) -m tests.bench --scale $(SCALE)

bench-instructions: $(STAMP)
	$(PY) -m tests.bench.instructions

soak: $(STAMP)
	$(BIN)/pytest tests/reliability -m slow --run-slow

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
