# Two commands from a fresh clone (Python 3.11 and pip only): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ddstars-installed
CORES ?= all

.PHONY: setup run test test-all lint bench clean

# Create the virtual environment and install the project (editable) with its test tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The default workflow on the built-in simulated sky; everything lands in resources/simulated/ and results/.
# An interrupted earlier run (Ctrl-C, a killed Snakemake) is recovered: its unfinished jobs are redone.
run: $(STAMP)
	$(BIN)/python -m ddstars.runner --cores $(CORES)

# Fast test suite (what CI runs). `make test-all` adds the slow tests.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not remote_data and not gpu"

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "not remote_data and not gpu"

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakemake --lint
	$(BIN)/lint-imports

# Speed and memory benchmarks (never part of `make test`).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_catalog.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_convergence.py
	$(BIN)/python benchmarks/bench_validation.py
	$(BIN)/python benchmarks/bench_inference.py
	$(BIN)/python benchmarks/bench_hats.py

clean:
	rm -rf results resources/simulated .snakemake
