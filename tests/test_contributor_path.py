"""The contributor path as a plugin author walks it (issue 23): every friction item
found on the way has a test here (status without the plugin and `report --plugin`
are in tests/test_provenance.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import torch
import yaml
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.components import Component, ParamGroup, Params, Strategy
from ftbench.errors import SuiteError
from ftbench.results.records import load_records
from ftbench.suite import parse_suite

BASE = """
name: friction
backbones: [{name: toy-timm}]
datasets: [{name: toy, params: {n_per_class: 8}}]
strategies: [{name: toy-full}]
seeds: [0]
budget: {steps: 2}
train: {batch_size: 16}
threads: 1
"""


def problems(text: str, registry) -> list[str]:
    with pytest.raises(SuiteError) as info:
        parse_suite(textwrap.dedent(text), "s.yaml", registry)
    return info.value.problems


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *map(str, args)], obj={})


# ---------------------------------------------------------------- params: did you mean, strict types


def test_a_param_typo_gets_did_you_mean_and_the_valid_params(toy_registry):
    found = problems(BASE.replace("{name: toy-full}", "{name: l2-sp, params: {alpah: 0.1}}"), toy_registry)
    assert found == ["strategies[0].params.alpah (line 5): unknown key 'alpah'; did you mean 'alpha'? (valid: "
                     "alpha, beta; `ftbench list strategies l2-sp` describes them)"]
    found = problems(BASE.replace("train: {batch_size: 16}", "train: {batch_sise: 16}"), toy_registry)
    assert found[0].startswith("train.batch_sise (line 8): unknown key 'batch_sise'; did you mean 'batch_size'? "
                               "(valid: optimizer, lr,")


@pytest.mark.parametrize("bad, message", [
    ("{name: l2-sp, params: {alpha: yes}}", "strategies[0].params.alpha (line 5): Input should be a valid number"),
    ("{name: l2-sp, params: {alpha: '0.1'}}", "strategies[0].params.alpha (line 5): Input should be a valid number"),
    ("{name: toy-full, train: {lr: on}}", "strategies[0].train.lr (line 5): Input should be a valid number"),
])
def test_params_are_typed_strictly(toy_registry, bad, message):
    found = problems(BASE.replace("{name: toy-full}", bad), toy_registry)
    assert any(p.startswith(message) for p in found), found


def test_strict_types_still_read_what_an_author_means(toy_registry):
    suite = parse_suite(BASE.replace("{name: toy-full}", "{name: l2-sp, params: {alpha: 1e-3, beta: 1}}")
                        .replace("train: {batch_size: 16}", "train: {batch_size: 16, lr: 3e-4}"), registry=toy_registry)
    assert suite.strategies[0].params == {"alpha": 0.001, "beta": 1} and suite.train.lr == 0.0003
    found = problems(BASE.replace("{steps: 2}", "{steps: 2.0}"), toy_registry)
    assert found == ["budget.steps (line 7): Input should be a valid integer"]
    glyphs = BASE.replace("{name: toy, params: {n_per_class: 8}}", "{name: glyphs, params: {rotation: [-10, 10]}}")
    assert parse_suite(glyphs, registry=toy_registry).datasets[0].params["rotation"] == [-10, 10]  # a list fills a pair


# ---------------------------------------------------------------- searches


def test_every_search_space_problem_is_reported_at_once(toy_registry):
    text = BASE.replace("{name: toy-full}", "{name: l2-sp}") + textwrap.dedent("""\
        search:
          trials: 2
          space:
            model.lr: {choice: [0.1]}
            train.lrr: {choice: [0.1]}
            train.lr: {loguniform: [0, 0.1]}
            params.alpah: {choice: [0.1]}
            params.beta: {choice: [-1.0]}
        """)
    found = problems(text, toy_registry)
    assert len(found) == 5, found
    assert any(p.startswith("search.space.model.lr (line 13): Value error, search keys are `train.KEY`") for p in found)
    assert any("search.space.train.lrr (line 14): Value error, `train:` has no key 'lrr'; did you mean 'lr'?" in p
               for p in found)
    assert any(p.startswith("search.space.train.lr (line 15): Value error, loguniform: low must be > 0") for p in found)
    assert ("search.space.params.alpah (line 16): strategy 'l2-sp' has no parameter 'alpah'; did you mean 'alpha'? "
            "(its parameters: alpha, beta)") in found
    assert any(p.startswith("search.space.params.beta (line 17): -1.0 is not a valid `params.beta` of 'l2-sp'")
               for p in found)


def test_a_search_with_no_finished_trial_fails_its_cell_loudly(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text(BASE.replace("[{name: toy-full}]", "[{name: toy-full}, {name: toy-raise}]")
                     + "search: {trials: 2, space: {train.lr: {choice: [0.01, 0.1]}}}\n")
    out = tmp_path / "res"
    result = invoke("run", suite, "--results", out, "-q")
    assert result.exit_code == 1, result.output
    assert ("search FAILED: the search of toy-raise on toy-timm/toy/all finished none of its 2 trials (2 failed, "
            "0 pruned; first error: RuntimeError: this strategy always fails)") in result.output
    assert "selected for toy-raise" not in result.output and "{}" not in result.output
    by_strategy = {r["cell"]["strategy"]: r for r in load_records(out)}
    assert by_strategy["toy-full"]["status"] == "ok"
    failed = by_strategy["toy-raise"]
    assert failed["status"] == "failed" and failed["error"]["type"] == "SearchFailed"
    assert "its runs are not run at an unsearched configuration" in failed["error"]["message"]
    assert "failed: " in result.output and "SearchFailed" in result.output


def test_unequal_tuning_budgets_need_allow_and_are_shown(tmp_path, toy_registry):
    from ftbench.results.provenance import report_notes

    unequal = BASE.replace("[{name: toy-full}]", "[{name: toy-full}, {name: toy-full, label: slow, train: {lr: 0.1}, "
                                                 "search: {trials: 3}}]") \
        + "search: {trials: 1, space: {train.lr: {choice: [0.01, 0.1]}}}\n"
    found = problems(unequal, toy_registry)
    assert found == ["strategies (line 5): the searched strategies get different tuning budgets (toy-full 1 trials "
                     "x 1 seed, slow 3 trials x 1 seed), so the comparison favours the better-tuned ones: give every "
                     "entry the same `trials:` and tuning `seeds:` (a grid's size is its trials), or set "
                     "`allow_unequal_budget: true` under the suite's `search:` to compare them anyway"]
    allowed = tmp_path / "s.yaml"
    allowed.write_text(unequal.replace("search: {trials: 1,", "search: {allow_unequal_budget: true, trials: 1,"))
    validate = invoke("validate", allowed)
    assert validate.exit_code == 0, validate.output
    assert "warning: unequal tuning budgets (allow_unequal_budget): toy-full 1 trials x 1 seed, slow 3 trials x " \
           "1 seed" in validate.output

    def record(strategy, trials):
        return {"status": "ok", "cell": {"strategy": strategy}, "selection": {"trials": trials, "tuning_seeds": [0]}}
    notes = report_notes([record("toy-full", 1), record("slow", 3)])
    assert notes == ["unequal tuning budgets (`allow_unequal_budget`): toy-full 1 trials x 1 seed, slow 3 trials "
                     "x 1 seed; the strategies tuned longer are favoured"]
    assert report_notes([record("toy-full", 3), record("slow", 3)]) == []


# ---------------------------------------------------------------- timing, report


SLOW_IMPORT = {"": '''
import ftbench
from ftbench.components import Component, Params, lazy


@ftbench.hookimpl
def ftbench_register_strategies():
    return [Component("slow-import", lazy("{name}_impl:make"), Params, "Imports slowly (tests).")]
''', "_impl": '''
import time

from ftbench.components import Strategy

time.sleep(1.0)  # an import as slow as scikit-learn's, paid once per process, by the first run


def make(params):
    return Strategy()
'''}


def test_the_first_run_in_a_process_pays_its_warm_up_outside_wall_s(tmp_path, monkeypatch):
    name = f"slow_import_{time.monotonic_ns()}"  # never imported before in this process
    for suffix, text in SLOW_IMPORT.items():
        (tmp_path / f"{name}{suffix}.py").write_text(text.replace("{name}", name))
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "s.yaml"
    suite.write_text(BASE.replace("[{name: toy-full}]", "[{name: slow-import}]").replace("seeds: [0]", "seeds: [0, 1]"))
    result = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "--plugin", name, "run", str(suite),
                                      "--results", str(tmp_path / "res"), "-q"], obj={})
    assert result.exit_code == 0, result.output
    first, second = sorted(load_records(tmp_path / "res"), key=lambda r: r["seed"])
    assert first["timing"]["warmup_s"] >= 1.0 and second["timing"]["warmup_s"] < 0.5
    assert first["timing"]["wall_s"] < 1.0, first["timing"]  # the slow import is not the run's time
    sys.modules.pop(name, None), sys.modules.pop(f"{name}_impl", None)


def test_an_infinite_statistic_reads_n_a_with_its_reason():
    from tests.fixtures.report_records import make_record
    import numpy as np

    from ftbench.report import build_report

    rng = np.random.default_rng(0)
    records = []
    for task in range(10):  # enough tasks for Iman-Davenport's F; every task ranks the strategies alike
        for offset, strategy in ((0.0, "full"), (5.0, "linear-probe"), (10.0, "scratch")):
            for seed in range(2):
                rec = make_record("digits", strategy, 2, seed, rng)
                rec["cell"] = {**rec["cell"], "dataset": f"task{task}"}
                rec["id"] = f"{task:02d}{offset:02.0f}{seed}{rec['id'][5:]}"
                rec["metrics"]["test"]["acc"] = 90.0 - offset + seed * 0.1
                records.append(rec)
    notes = build_report(records).table("ranks").notes
    friedman = next(n for n in notes if n.startswith("Friedman"))
    assert "Iman-Davenport F = n/a (every task ranks the strategies alike: F divides by 0)" in friedman, friedman
    assert "inf" not in friedman


# ---------------------------------------------------------------- the scaffold and the kit


def test_the_scaffold_writes_a_gitignore_that_keeps_baselines(tmp_path):
    from ftbench.scaffold import scaffold

    root = scaffold("strategy", "top-k", tmp_path / "ftbench-top-k")
    assert (root / ".gitignore").is_file()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    paths = ["results/ci/0123abcd.json", "results/baselines/ci.json", "ftbench_top_k/__pycache__/x.pyc",
             "build/lib/x.py", "ftbench_top_k.egg-info/PKG-INFO", "ftbench_top_k/__init__.py"]
    ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "--no-index", *paths], capture_output=True,
                             text=True).stdout.split()
    assert ignored == ["results/ci/0123abcd.json", "ftbench_top_k/__pycache__/x.pyc", "build/lib/x.py",
                       "ftbench_top_k.egg-info/PKG-INFO"]


class _ThreadSpy(Strategy):
    seen: list[int] = []

    def __init__(self, params):
        pass

    def setup(self, model, backbone):
        _ThreadSpy.seen.append(torch.get_num_threads())
        return [ParamGroup([n for n, _ in model.named_parameters()])]


def test_the_conformance_kit_runs_on_one_thread_and_restores_the_callers():
    from ftbench.testing import check_strategy

    _ThreadSpy.seen = []
    torch.set_num_threads(2)
    try:
        check_strategy(Component("spy", _ThreadSpy, Params, "Records its thread count (tests)."))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)  # conftest's setting for the rest of the tests
    assert _ThreadSpy.seen and set(_ThreadSpy.seen) == {1}  # the kit's training and its one-run suite


# ---------------------------------------------------------------- docs/ci.md


def test_the_plugin_ci_workflow_installs_ftbench_before_the_plugin():
    """Without ftbench on a package index, `pip install -e .` of the plugin cannot
    resolve `ftbench>=...`: the documented workflow installs ftbench first, from a
    pinned git reference that pip accepts."""
    from pathlib import Path

    from packaging.requirements import Requirement

    text = (Path(__file__).resolve().parents[1] / "docs" / "ci.md").read_text()
    workflow = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    job = workflow["jobs"]["test"]
    requirement = Requirement(job["env"]["FTBENCH"])
    assert requirement.name == "ftbench" and requirement.url.startswith("git+https://")
    install = next(step["run"] for step in job["steps"] if step.get("name", "").startswith("Install"))
    lines = [line.strip() for line in install.splitlines()]
    assert lines.index('pip install "$FTBENCH"') < lines.index("pip install -e '.[test]'")
    assert "pip install /path/to/ftbench" in text and "## Installing ftbench" in text
