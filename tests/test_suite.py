"""Suite validation (every error path) and matrix expansion."""

import textwrap

import pytest

from ftbench.errors import SuiteError
from ftbench.suite import expand, parse_suite

BASE = """
name: demo
backbones:
  - name: toy-timm
datasets:
  - name: toy
strategies:
  - name: toy-full
budget: {steps: 2}
"""


def problems(text, registry=None):
    with pytest.raises(SuiteError) as info:
        parse_suite(textwrap.dedent(text), "s.yaml", registry)
    return info.value.problems


def test_valid_suite_expands_to_one_run(toy_registry):
    suite = parse_suite(BASE, "s.yaml", toy_registry)
    specs = expand(suite, toy_registry)
    assert len(specs) == 1
    assert specs[0].backbone.params == {"model": "test_resnet", "pretrained": "none"}  # defaults resolved


def test_unknown_key_names_path_and_line():
    found = problems(BASE + "stratgies: []\n")
    assert found == ["stratgies (line 10): unknown key 'stratgies'; did you mean 'strategies'? (valid: name, "
                     "description, pretrain, backbones, datasets, strategies, seeds, data, budget, train, eval, "
                     "search, primary, exclude, include, executor, loggers, device, deterministic, threads, numerics, "
                     "loader_workers; "
                     "docs/suite.md describes them)"]


def test_all_errors_reported_at_once():
    text = BASE.replace("{steps: 2}", "{steps: -1}") + "seeds: [a]\ntrain: {lr: fast, optimiser: sgd}\n"
    found = problems(text)
    assert len(found) == 4
    assert any(p.startswith("budget.steps (line 9)") and "greater than 0" in p for p in found)
    assert any(p.startswith("seeds[0] (line 10)") for p in found)
    assert any(p.startswith("train.lr (line 11)") for p in found)
    assert any(p.startswith("train.optimiser (line 11): unknown key") for p in found)


def test_missing_required_field():
    text = "\n".join(line for line in BASE.splitlines() if not line.startswith("budget"))
    assert problems(text) == ["budget: required field is missing"]


def test_invalid_yaml_gives_line():
    found = problems("name: x\nbackbones: [\n")
    assert len(found) == 1 and found[0].startswith("not valid YAML at line 3")


def test_not_a_mapping():
    assert "must be a YAML mapping" in problems("- a\n- b\n")[0]


def test_unknown_component_suggests_a_name(toy_registry):
    found = problems(BASE.replace("name: toy-full", "name: toy-ful"), toy_registry)
    assert len(found) == 1
    assert found[0].startswith("strategies[0].name (line 8): unknown strategy 'toy-ful'; did you mean 'toy-full'?")
    assert "`ftbench list strategies` shows all" in found[0]


def test_bad_component_params(toy_registry):
    found = problems(BASE.replace("- name: toy\n", "- name: toy\n    params: {classes: 99, colour: red}\n"),
                     toy_registry)
    assert any(p.startswith("datasets[0].params.classes (line 7)") and "less than or equal to 6" in p for p in found)
    assert "datasets[0].params.colour (line 7): unknown key 'colour' (valid: n_per_class, classes, size; " \
           "`ftbench list datasets toy` describes them)" in found, found


def test_strategy_train_override_is_validated():
    text = BASE.replace("- name: toy-full", "- name: toy-full\n    train: {lr: -1}")
    found = problems(text)
    assert len(found) == 1 and found[0].startswith("strategies[0].train.lr") and "greater than 0" in found[0]


def test_unknown_pretrain_job():
    text = BASE.replace("- name: toy-timm", "- name: toy-timm\n    params: {pretrained: 'pretrain:nope'}")
    assert "no pretrain job named 'nope'" in problems(text)[0]


def test_duplicate_labels_and_unknown_rule_labels():
    text = BASE.replace("- name: toy-full", "- name: toy-full\n  - name: toy-full") + "exclude: [{strategy: fulll}]\n"
    found = problems(text)
    assert "two entries share the label 'toy-full'" in found[0]
    assert "exclude[0].strategy (line 11): 'fulll' matches no strategy" in found[1]


def test_unknown_corruption_is_caught_before_any_run():
    text = BASE.replace("- name: toy\n", "- name: toy\n    shifts: {corruptions: [gausian_noise]}\n")
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith("datasets[0].shifts.corruptions[0] (line 7): unknown corruption 'gausian_noise'; "
                               "did you mean 'gaussian_noise'?")


def test_bad_severity_and_device():
    text = BASE.replace("- name: toy\n", "- name: toy\n    shifts: {corruptions: [contrast], severities: [0, 6]}\n")
    found = problems(text + "device: gpu\n")
    assert any("severities" in p and "between 1 and 5" in p for p in found)
    assert any(p.startswith("device") and "auto, cpu, cuda" in p for p in found)


MATRIX = """
name: m
backbones: [{name: toy-timm}, {name: toy-timm, label: vit, params: {model: test_vit}}]
datasets: [{name: toy}, {name: toy, label: toy4, params: {classes: 4}}]
strategies:
  - {name: toy-full}
  - {name: toy-full, label: sgd, train: {optimizer: sgd, lr: 0.1}}
seeds: [0, 1]
data: [{shots: 2}, {fraction: 0.5}, {}]
budget: {epochs: 1}
train: {lr: 0.01}
"""


def test_matrix_expansion_with_overrides_and_rules(toy_registry):
    suite = parse_suite(MATRIX, "m.yaml", toy_registry)
    specs = expand(suite, toy_registry)
    assert len(specs) == 2 * 2 * 2 * 2 * 3
    sgd = [s for s in specs if s.labels[2] == "sgd"]
    assert {(s.train.optimizer, s.train.lr) for s in sgd} == {("sgd", 0.1)}
    assert {s.train.lr for s in specs if s.labels[2] == "toy-full"} == {0.01}
    assert {s.data.label for s in specs} == {"2-shot", "50%", "all"}
    assert problems(MATRIX.replace("{shots: 2}", "{shots: 2, fraction: 0.5}"))[0].startswith("data[0] (line 9)")
    assert len({s.id for s in specs}) == len(specs)  # every run has its own id

    ruled = parse_suite(MATRIX + "exclude: [{backbone: vit}, {data: '2-shot'}]\n"
                        "include: [{backbone: vit, dataset: toy, strategy: sgd, data: all, seed: 0}]\n",
                        "m.yaml", toy_registry)
    kept = expand(ruled, toy_registry)
    assert len(kept) == 2 * 2 * 2 * 2 + 1
    assert [s.labels for s in kept if s.labels[0] == "vit"] == [("vit", "toy", "sgd")]


def test_run_ids_are_stable_and_ignore_device(toy_registry):
    a = expand(parse_suite(BASE, "s.yaml", toy_registry), toy_registry)[0]
    b = expand(parse_suite(BASE + "device: cpu\n", "s.yaml", toy_registry), toy_registry)[0]
    c = expand(parse_suite(BASE.replace("{steps: 2}", "{steps: 3}"), "s.yaml", toy_registry), toy_registry)[0]
    assert a.id == b.id != c.id


def test_every_shipped_suite_validates():
    from pathlib import Path

    from ftbench.plugins import default_registry
    from ftbench.suite import load_suite

    registry = default_registry()
    suites = sorted((Path(__file__).parents[1] / "suites").glob("*.yaml"))
    assert len(suites) >= 6
    for path in suites:
        suite = load_suite(path, registry)
        assert expand(suite, registry), path
        assert path.read_text().startswith("#"), f"{path.name} must open with a comment saying what it does"
        budgets = [suite.budget, *(job.budget for job in suite.pretrain.values())]
        assert all(b.seconds is None for b in budgets), f"{path.name}: a seconds budget makes results machine-dependent"


def test_entries_that_expand_to_one_run_are_refused_naming_both(toy_registry):
    text = BASE.replace("- name: toy-full", "- name: toy-full\n  - {name: toy-full, label: full-b}")
    found = problems(text)
    assert found == [found[0]] and found[0].startswith("strategies[1] (line 9): expands to the same runs as "
                                                       "strategies[0] (line 8) ('full-b' and 'toy-full'")
    # a default written out is the same run: only the registry's resolved params show it
    text = BASE.replace("- name: toy-timm", "- name: toy-timm\n  - {name: toy-timm, label: b, params: {model: test_resnet}}")
    assert parse_suite(text, "s.yaml")  # without the registry the params differ
    assert problems(text, toy_registry)[0].startswith("backbones[1] (line 5): expands to the same runs as backbones[0]")
    distinct = BASE.replace("- name: toy-full", "- name: toy-full\n  - {name: toy-full, label: b, train: {lr: 0.1}}")
    assert len({s.id for s in expand(parse_suite(distinct, "s.yaml", toy_registry), toy_registry)}) == 2


def test_repeated_seeds_and_data_amounts_are_refused():
    found = problems(BASE + "seeds: [0, 1, 0]\ndata: [{}, {shots: 2}, {fraction: 1.0}]\n")
    assert found == ["seeds[2] (line 10): repeats seeds[0] (line 10) (seed 0); each run would be planned twice, "
                     "or two would share a report cell: remove the repeat",
                     "data[2] (line 11): repeats data[0] (line 11) (data 'all'); each run would be planned twice, "
                     "or two would share a report cell: remove the repeat"]


def test_primary_comparisons_name_the_suites_strategies_and_change_no_run_id(toy_registry):
    two = BASE.replace("- name: toy-full", "- name: toy-full\n  - name: toy-full\n    label: other\n"
                                          "    params: {lr_scale: 0.5}")
    bad = two + "primary: [{strategy: othr, vs: toy-full}, {strategy: other, vs: other}]\n"
    found = problems(bad)
    assert found[0] == ("primary[0].strategy (line 13): 'othr' is no strategy of this suite; did you mean 'other'? "
                        "(strategy labels: toy-full, other)")
    assert "compares 'other' with itself" in found[1]
    plain = parse_suite(two, "s.yaml")
    declared = parse_suite(two + "primary: [{strategy: other, vs: toy-full, data: all}]\n", "s.yaml")
    assert declared.primary[0].strategy == "other" and declared.primary[0].data == "all"
    assert [s.id for s in expand(plain)] == [s.id for s in expand(declared)]  # not part of any run's config
