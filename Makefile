# Two commands on a fresh machine (each creates or reuses .venv):
#   make quickstart   run the embedded default suite, print its summary, write results/quickstart/report.html
#   make test         run the test suite
# Also: make gate (CI regression gate), make bench (speed benchmarks),
#   make reproduce (rerun the committed reference's quickstart: its search, then its final runs,
#                   exactly equal on the reference's machine fingerprint, statistically elsewhere),
#   make reference (maintainers: regenerate that reference, then README's report: make readme).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ftbench-installed

REFERENCE := results/reference/quickstart

.PHONY: quickstart test gate gate-baseline bench clean reproduce reference readme

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,plots,pandas,ray,slurm,loggers,browser]'
	touch $(STAMP)

# The report prints the primary comparisons and the summary, and writes the full
# report (figures first, every table) to results/quickstart/report.html.
quickstart: $(STAMP)
	$(BIN)/ftbench run suites/quickstart.yaml
	$(BIN)/ftbench report results/quickstart

test: $(STAMP)
	$(BIN)/python -m pytest

# The regression gate CI runs: a tiny suite on CPU against the committed baseline; speed is
# judged on timing repetitions the compare makes (results/baselines/ci-gate.yaml).
# Maintainers, on the CI machine's kind, idle: make gate-baseline.
gate: $(STAMP)
	$(BIN)/ftbench run suites/ci-regression.yaml --results results/ci-regression --rerun --quiet
	$(BIN)/ftbench compare results/baselines/ci-regression.json results/ci-regression --config results/baselines/ci-gate.yaml

# The baseline holds 10 seeds (an ambiguous accuracy drop gets more, `more_seeds:`) and 10
# timing repetitions.
gate-baseline: $(STAMP)
	$(BIN)/ftbench run suites/ci-regression.yaml --results results/ci-regression-baseline --rerun --quiet \
		-o 'seeds=[0,1,2,3,4,5,6,7,8,9]'
	$(BIN)/ftbench baseline save results/ci-regression-baseline -o results/baselines/ci-regression.json \
		--speed-reps 10

# Rerun the reference into a fresh folder; the rule follows the machine fingerprints
# (docs/cli.md): every seed equal on the reference's, statistical agreement elsewhere.
reproduce: $(STAMP)
	rm -rf results/reproduce
	$(BIN)/ftbench reproduce $(REFERENCE) --results results/reproduce --quiet

# Maintainers: regenerate the committed reference records and README's report block.
reference: $(STAMP)
	rm -rf $(REFERENCE)
	$(BIN)/ftbench run suites/quickstart.yaml --results $(REFERENCE) --quiet
	$(MAKE) readme

# README's report block, generated from the reference records (a test checks it is current).
readme: $(STAMP)
	$(BIN)/python tools/readme_report.py

bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/data_path.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/strategies.py
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only -p no:cacheprovider

clean:
	rm -rf results/quickstart results/ci-regression results/ci-regression-baseline results/reproduce .pytest_cache .benchmarks
