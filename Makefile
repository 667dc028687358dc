# One command each on a fresh clone: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: lint typecheck pytest

lint: $(STAMP)
	$(PY) -m ruff check src tests examples benchmarks
	$(PY) -m ruff format --check src tests

typecheck: $(STAMP)
	$(PY) -m mypy

# Two test processes; a module's tests stay in one (its runtime or cluster is made once).
pytest: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) -c "import distributed, psutil, pydaisi" 2>/dev/null || \
		$(PY) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .daisi .pytest_cache .mypy_cache .ruff_cache
