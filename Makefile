# Two commands on a fresh machine (each creates or reuses .venv):
#   make quickstart   run the embedded default suite and print its report
#   make test         run the test suite
# Also: make gate (CI regression gate), make bench (speed benchmarks),
#   make reproduce (rerun the quickstart, compare every accuracy with the committed reference),
#   make reference (maintainers: regenerate that reference, then README's report: make readme).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ftbench-installed

REFERENCE := results/reference/quickstart
# Exact (every seed's accuracy equal) on the machine kind the reference ran on; on
# another: make reproduce REPRODUCE_CONFIG=results/reference/reproduce-elsewhere.yaml
REPRODUCE_CONFIG ?= results/reference/reproduce-same-machine.yaml

.PHONY: quickstart test gate bench clean reproduce reference readme

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

# Rerun the quickstart into a fresh folder and compare every accuracy with the reference.
reproduce: $(STAMP)
	rm -rf results/reproduce
	$(BIN)/ftbench run suites/quickstart.yaml --results results/reproduce --quiet
	$(BIN)/ftbench compare $(REFERENCE) results/reproduce --config $(REPRODUCE_CONFIG)

# Maintainers: regenerate the committed reference records and README's report block.
reference: $(STAMP)
	rm -rf $(REFERENCE)
	$(BIN)/ftbench run suites/quickstart.yaml --results $(REFERENCE) --quiet
	$(MAKE) readme

# README's report block, generated from the reference records (a test checks it is current).
readme: $(STAMP)
	$(BIN)/python tools/readme_report.py

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/data_path.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/strategies.py
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only -p no:cacheprovider

clean:
	rm -rf results/quickstart results/ci-regression results/reproduce .pytest_cache .benchmarks
