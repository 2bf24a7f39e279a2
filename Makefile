# One entry point for people and CI. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build by default (pinned); on a GPU machine: make install TORCH_SPEC="torch>=2.3"
TORCH_SPEC ?= torch==2.13.0
OUT ?= outputs/demo

.PHONY: install demo test check lint format typecheck bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: install
	$(VENV)/bin/knnlab demo --out $(OUT)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck

test: check
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q

bench: install
	$(PY) benchmarks/knn.py
	$(PY) benchmarks/n3.py
	$(PY) benchmarks/hubness.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .mypy_cache .ruff_cache
