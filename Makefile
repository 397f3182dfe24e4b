# Two commands on a fresh machine (each creates or reuses .venv):
#   make quickstart   run the embedded default suite and print its report
#   make test         run the test suite
# Also: make gate (CI regression gate), make bench (speed benchmarks).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ftbench-installed

.PHONY: quickstart test gate bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,plots,ray,slurm,loggers,browser]'
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/ftbench run suites/quickstart.yaml
	$(BIN)/ftbench report results/quickstart

test: $(STAMP)
	$(BIN)/python -m pytest

# The regression gate CI runs: a tiny suite on CPU against the committed baseline.
gate: $(STAMP)
	$(BIN)/ftbench run suites/ci-regression.yaml --results results/ci-regression --rerun --quiet
	$(BIN)/ftbench compare results/baselines/ci-regression.json results/ci-regression --config results/baselines/ci-gate.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/data_path.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/strategies.py
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only -p no:cacheprovider

clean:
	rm -rf results/quickstart results/ci-regression .pytest_cache .benchmarks
