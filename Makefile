# The two commands: `make run` and `make test`. Both set up .venv first when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/tenantry run

test: $(INSTALLED) lint
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy

format: $(INSTALLED)
	$(BIN)/ruff check --fix src tests bench deploy
	$(BIN)/ruff format src tests bench deploy

bench: $(INSTALLED)
	$(BIN)/python bench/rls_tax.py
	$(BIN)/python bench/provision.py
	$(BIN)/python bench/auth.py
	$(BIN)/python bench/request_path.py
	$(BIN)/python bench/noisy_neighbor.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/workflows.py
	$(BIN)/python bench/hostile_upload.py
	$(BIN)/python bench/outbox.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
