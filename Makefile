# The two commands a new user needs (see README):
#   make run    set up, build the sample dataset, run every report (the default batch)
#   make test   set up, run the whole test suite
# Both create the virtual environment and install what they need on first use.
# CI (.ci/run) runs `make lint` and `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SAMPLE := data/sample
SAMPLE_USERS ?= 20000
WORKERS ?=

.PHONY: run test test-slow lint bench lab install install-dev clean-reports help

help:
	@echo "make run        set up, build data/sample if missing, run the default report batch into reports/"
	@echo "make test       set up (with test extras) and run the test suite"
	@echo "make test-slow  the long statistical checks (repeated simulations)"
	@echo "make lint       ruff check (rules in pyproject.toml)"
	@echo "make bench      benchmarks against the named peers (prints tables)"
	@echo "make lab        open JupyterLab on notebooks/ with the package importable"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(SAMPLE)/users.parquet: | $(VENV)/.installed
	$(BIN)/workbench simulate --users $(SAMPLE_USERS) --seed 1 --out $(SAMPLE) --force

run: $(VENV)/.installed $(SAMPLE)/users.parquet
	$(BIN)/workbench batch $(if $(WORKERS),--workers $(WORKERS))

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

# Peers for comparison, never dependencies. lifelines declares pandas<3, so it
# goes in without its dependencies (what it needs is already installed).
bench: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/pip install --quiet --no-deps 'lifelines==0.30.3' 'autograd-gamma>=0.5'
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lab: $(VENV)/.installed
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

clean-reports:
	rm -rf reports/*/ reports/index.html
