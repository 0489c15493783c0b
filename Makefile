# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench docs venv dev clean

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip
	touch $@

# What the demo needs: the package, figures, offline datasets, zennit / captum explainers.
$(VENV)/.stamp-base: $(VENV)/.stamp-venv pyproject.toml
	$(PIP) install -e ".[data,report,explain]"
	touch $@

# Everything the tests need (optional extras included).
$(VENV)/.stamp-dev: $(VENV)/.stamp-base pyproject.toml
	$(PIP) install -e ".[dev]"
	touch $@

venv: $(VENV)/.stamp-base
dev: $(VENV)/.stamp-dev

demo: $(VENV)/.stamp-base
	$(VENV)/bin/whyclust demo

test: $(VENV)/.stamp-dev
	$(PY) -m pytest -n 2 --dist loadgroup

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check src tests benchmarks examples

# The documentation site (Sphinx + executed gallery) in docs/_build/html, warning-free.
$(VENV)/.stamp-docs: $(VENV)/.stamp-base pyproject.toml
	$(PIP) install -e ".[docs]"
	touch $@

docs: $(VENV)/.stamp-docs
	MPLBACKEND=Agg $(VENV)/bin/sphinx-build -b html -W --keep-going -q docs docs/_build/html

bench: $(VENV)/.stamp-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
	rm -rf docs/_build docs/auto_examples docs/generated docs/sg_execution_times.rst
