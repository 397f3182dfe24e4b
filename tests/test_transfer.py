"""Unlabelled target data (suite `adapt:`), the adaptation strategies (adabn, dann,
self-training) and feature extraction with classical heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import Field

import ftbench
from ftbench.components import Component, ImageSet, Params, Strategy, TaskData, UnlabelledData
from ftbench.errors import SuiteError
from ftbench.plugins import Registry, use_registry
from ftbench.engine.runner import execute
from ftbench.results.store import ResultsStore
from ftbench.suite import expand, parse_suite
from ftbench.testing import toy_task
from ftbench_strategies.adabn import AdaBN, reestimate_bn
from ftbench_strategies.dann import DANN, DOMAIN_HEAD, domain_classifier, grad_reverse
from ftbench_strategies.feature_extract import FeatureExtract, FeatureExtractParams, KNNHead
from ftbench_strategies.self_training import SelfTraining, SelfTrainingParams

from tests.test_strategies import PREP, TEST, make_backbone, train


# ---------------------------------------------------------------- a plugin for these tests


class ShiftedToyParams(Params):
    poison: bool = Field(False, description="scramble the training labels (the test labels stay)")


def shifted_toy(params: ShiftedToyParams, *, seed: int) -> TaskData:
    """The toy bands, colour-inverted (another domain); with `poison`, wrong training labels."""
    task = toy_task(seed=seed)
    train, test = (ImageSet(255 - s.images, s.labels) for s in (task.train, task.test))
    if params.poison:
        train = ImageSet(train.images, torch.randperm(len(train), generator=torch.Generator().manual_seed(5))
                         % len(task.classes))
    return TaskData(task.classes, train, test)


def toy_with_domain(params: Params, *, seed: int) -> TaskData:
    """The toy bands plus a dataset-provided domain of 30 images, each marked by its
    index in pixel (0, 0, 0) so a test can tell which images went where."""
    task = toy_task(seed=seed)
    domain = ImageSet(255 - task.train.images[:30].clone(), task.train.labels[:30])
    domain.images[:, 0, 0, 0] = torch.arange(30, dtype=torch.uint8)
    return TaskData(task.classes, task.train, task.test, shifted={"inverted": domain})


class Recorder(Strategy):
    """Full fine-tuning that keeps what the core handed it."""

    wants_unlabelled = True
    seen: list[UnlabelledData] = []

    def use_unlabelled(self, data: UnlabelledData) -> None:
        Recorder.seen.append(data)


class _Plugin:
    @ftbench.hookimpl
    def ftbench_register_datasets(self):
        return [Component("toy-shifted", shifted_toy, ShiftedToyParams, "Inverted bands (tests)."),
                Component("toy-domains", toy_with_domain, Params, "Bands with a domain (tests).")]

    @ftbench.hookimpl
    def ftbench_register_strategies(self):
        return [Component("toy-recorder", lambda p: Recorder(), Params, "Records its unlabelled data (tests).")]


@pytest.fixture
def registry(toy_registry):
    """conftest's toy registry plus this module's plugin, for this test only."""
    plugin = _Plugin()
    toy_registry.pm.register(plugin, name="transfer-tests")
    try:
        reg = Registry(toy_registry.pm)
        use_registry(reg)
        yield reg
    finally:
        toy_registry.pm.unregister(plugin)


def run_suite(text: str, registry, tmp_path) -> list[dict]:
    suite = parse_suite(text, registry=registry)
    return [execute(spec, registry, ResultsStore(tmp_path)) for spec in expand(suite, registry)]


SUITE = """
name: adapt
backbones: [{name: toy-timm}]
datasets:
  - name: toy
    shifts: {datasets: [{name: toy-shifted, label: inverted, params: {poison: %s}}]}
    adapt: {domain: inverted}
strategies: [%s]
budget: {steps: 6}
train: {batch_size: 16, lr: 0.01}
eval: {curve: false}
"""


# ---------------------------------------------------------------- the suite's adapt:


@pytest.mark.parametrize("adapt, message", [
    ("{domain: a, corruption: contrast}", "give one of domain or corruption"),
    ("{severity: 2}", "give one of domain or corruption"),
    ("{corruption: fog}", "unknown corruption"),
    ("{corruption: contrast, severity: 9}", "less than or equal to 5"),
])
def test_bad_adapt_entries_are_reported(adapt, message):
    text = SUITE.replace("adapt: {domain: inverted}", f"adapt: {adapt}") % ("false", "{name: toy-full}")
    with pytest.raises(SuiteError) as err:
        parse_suite(text)
    assert message in str(err.value) and "adapt" in str(err.value)


def test_adapt_is_in_the_resolved_config_only_when_given():
    with_adapt = expand(parse_suite(SUITE % ("false", "{name: toy-full}")))[0]
    without = expand(parse_suite(SUITE.replace("    adapt: {domain: inverted}\n", "") % ("false", "{name: toy-full}")))[0]
    assert with_adapt.config()["dataset"]["adapt"] == {"domain": "inverted", "corruption": None, "severity": 3,
                                                      "fraction": 0.5}
    assert "adapt" not in without.config()["dataset"]  # run ids of suites without adapt: stay as they were
    assert with_adapt.id != without.id


@pytest.mark.parametrize("strategy", ["{name: self-training, params: {threshold: 0, ramp_start: 0, ramp_end: 0}}",
                                      "{name: dann, params: {ramp: false}}"])
def test_poisoned_labels_of_the_unlabelled_set_change_nothing(strategy, registry, tmp_path):
    clean = run_suite(SUITE % ("false", strategy), registry, tmp_path / "clean")[0]
    poisoned = run_suite(SUITE % ("true", strategy), registry, tmp_path / "poisoned")[0]
    assert clean["status"] == poisoned["status"] == "ok", clean["error"] or poisoned["error"]
    assert clean["unlabelled"] == {"source": "domain:inverted", "n": 72}  # the other set's train split
    assert clean["metrics"]["test"] == poisoned["metrics"]["test"]
    assert clean["metrics"]["shifted"] == poisoned["metrics"]["shifted"]  # its test labels are not poisoned
    losses = [[p["train_loss"] for p in r["metrics"]["curve"]] for r in (clean, poisoned)]
    assert losses[0] == losses[1]


def test_unlabelled_images_are_the_train_split_never_the_test_split(registry, tmp_path):
    Recorder.seen.clear()
    record = run_suite(SUITE % ("false", "{name: toy-recorder}"), registry, tmp_path)[0]
    data = Recorder.seen[0]
    assert not hasattr(data, "labels")
    other = shifted_toy(ShiftedToyParams(), seed=0)
    assert torch.equal(data.images, other.train.images) and not torch.equal(data.images[:36], other.test.images)
    assert record["unlabelled"]["n"] == len(other.train) and record["metrics"]["shifted"]["inverted"]["n"] == 36


def test_a_dataset_domain_is_carved_and_its_unlabelled_part_is_not_evaluated(registry, tmp_path):
    Recorder.seen.clear()
    text = (SUITE.replace("name: toy\n", "name: toy-domains\n")
            .replace("    shifts: {datasets: [{name: toy-shifted, label: inverted, params: {poison: %s}}]}\n", "")
            .replace("{domain: inverted}", "{domain: inverted, fraction: 0.4}") % "{name: toy-recorder}")
    record = run_suite(text, registry, tmp_path)[0]
    assert record["status"] == "ok", record["error"]
    marks = set(Recorder.seen[0].images[:, 0, 0, 0].tolist())
    assert len(marks) == 12 and record["unlabelled"] == {"source": "domain:inverted", "n": 12}
    assert record["metrics"]["shifted"]["inverted"]["n"] == 18  # 30 - 12: the carved images are not scored
    # which 18 were scored: a model that predicts from the mark shows it (mark -> its label)
    from ftbench.engine.tasks import domain_parts
    unlabelled, scored = domain_parts(30, 0.4)
    assert set(unlabelled.tolist()) == marks and not set(scored.tolist()) & marks


def test_corruption_adapt_uses_the_corrupted_training_split(registry, tmp_path):
    Recorder.seen.clear()
    text = (SUITE.replace("{domain: inverted}", "{corruption: gaussian_noise, severity: 2}")
            % ("false", "{name: toy-recorder}"))
    record = run_suite(text, registry, tmp_path)[0]
    from ftbench.engine.corruptions import corrupt_images
    from ftbench.engine.data import carve_val

    train_split, val = carve_val(toy_task(seed=0).train, 0.1, seed=0)
    assert record["unlabelled"] == {"source": "corruption:gaussian_noise@2", "n": len(train_split)}
    assert torch.equal(Recorder.seen[0].images, corrupt_images(train_split.images, "gaussian_noise", 2, seed=1))
    assert record["config"]["dataset"]["adapt"]["corruption"] == "gaussian_noise"


def test_an_adapting_strategy_without_adapt_fails_with_what_to_do(registry, tmp_path):
    text = SUITE.replace("    adapt: {domain: inverted}\n", "") % ("false", "{name: dann}")
    record = run_suite(text, registry, tmp_path)[0]
    assert record["status"] == "failed" and "add `adapt:" in record["error"]["message"]
    assert record["unlabelled"] is None


def test_non_adapting_strategies_record_no_unlabelled_data(registry, tmp_path):
    record = run_suite(SUITE % ("false", "{name: toy-full}"), registry, tmp_path)[0]
    assert record["status"] == "ok" and record["unlabelled"] is None


# ---------------------------------------------------------------- strategies


def unlabelled(images: torch.Tensor, batch_size: int = 16) -> UnlabelledData:
    return UnlabelledData("domain:test", images, PREP, batch_size, seed=0)


TARGET = 255 - TEST.images  # the toy images, inverted: another domain


def test_adabn_changes_only_the_batch_norm_running_statistics():
    backbone = make_backbone()
    model = backbone.model
    adapted = reestimate_bn(model, unlabelled(TARGET, batch_size=15))  # equal batches: the plain mean
    before, after = model.state_dict(), adapted.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    stats = {k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert changed and changed <= stats
    assert {k.rsplit(".", 1)[1] for k in changed} >= {"running_mean", "running_var"}
    # the first norm's statistics are its input's over every target image (the later
    # norms see inputs normalised by batch statistics, as in every BN recalibration)
    with torch.no_grad():
        x = adapted.conv1[0](PREP(TARGET))
    norm = adapted.conv1[1]
    assert torch.allclose(norm.running_mean, x.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(norm.running_var, x.var((0, 2, 3)), rtol=1e-2)  # mean of per-batch variances
    assert not torch.allclose(model.conv1[1].running_mean, x.mean((0, 2, 3)), atol=1e-2)


def test_adabn_strategy_trains_then_re_estimates():
    strategy = AdaBN()
    strategy.use_unlabelled(unlabelled(TARGET))
    backbone, _, before = train(strategy, steps=4)
    final = strategy.final_model(backbone.model)
    trained, evaluated = backbone.model.state_dict(), final.state_dict()
    weights = [k for k in trained if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(trained[k], evaluated[k]) for k in weights)
    assert not torch.equal(trained["bn1.running_mean"], evaluated["bn1.running_mean"])


def test_dann_gradient_reversal_flips_the_sign_of_the_domain_gradient():
    torch.manual_seed(0)
    features = torch.randn(8, 16, requires_grad=True)
    classifier = domain_classifier(16, 32)
    domain = torch.tensor([0.0] * 4 + [1.0] * 4)

    def grads(reverse: bool):
        features.grad = None
        classifier.zero_grad()
        x = grad_reverse(features, 0.5) if reverse else features
        F.binary_cross_entropy_with_logits(classifier(x).squeeze(1), domain).backward()
        return features.grad.clone(), [p.grad.clone() for p in classifier.parameters()]

    plain_f, plain_c = grads(False)
    reversed_f, reversed_c = grads(True)
    assert torch.allclose(reversed_f, -0.5 * plain_f) and plain_f.abs().sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(plain_c, reversed_c))  # the classifier still learns to tell


def test_dann_trains_its_domain_classifier_and_drops_it_for_evaluation():
    strategy = DANN()
    strategy.use_unlabelled(unlabelled(TARGET))
    backbone, result, _ = train(strategy, steps=6)
    assert hasattr(backbone.model, DOMAIN_HEAD)
    assert result.trainable_params > sum(p.numel() for p in make_backbone().model.parameters())
    final = strategy.final_model(backbone.model)
    assert not hasattr(final, DOMAIN_HEAD) and final(PREP(TEST.images[:4])).shape == (4, 3)


def test_self_training_uses_only_confident_pseudo_labels():
    strategy = SelfTraining(SelfTrainingParams(threshold=0.9))
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.2, 0.1, 0.0]], requires_grad=True)  # confident, not
    loss = strategy.pseudo_label_loss(logits)
    expected = F.cross_entropy(logits[:1], torch.tensor([0])) / 2
    assert torch.allclose(loss, expected)
    assert strategy.info() == {"pseudo_labelled_fraction": 0.5}
    assert [strategy.alpha(p) for p in (0.1, 0.4, 0.8)] == [0.0, pytest.approx(0.5), 1.0]


# ---------------------------------------------------------------- feature extraction


class _HeadOnly(torch.nn.Module):
    """Just a linear classifier: solve_head on given features needs no backbone."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.fc = torch.nn.Linear(features, classes)

    def get_classifier(self) -> torch.nn.Module:
        return self.fc


def test_feature_extract_chooses_C_on_val_never_test():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 20))
    y = (x[:, 0] + 1.5 * rng.normal(size=80) > 0).astype(int)
    from sklearn.linear_model import LogisticRegression

    xv = rng.normal(size=(200, 20))
    weak = LogisticRegression(C=1e-4, max_iter=1000).fit(x, y).predict(xv)
    strong = LogisticRegression(C=100.0, max_iter=1000).fit(x, y).predict(xv)
    assert (weak != strong).any()
    # val says the most regularised model is right, test says the least: planted disagreement
    model = _HeadOnly(20, 2)
    strategy = FeatureExtract(FeatureExtractParams(standardize=False, C_grid=(100.0, 1.0, 1e-4)))
    feats = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    strategy.solve_head(model, (feats(x), torch.as_tensor(y)), (feats(xv), torch.as_tensor(weak)))
    chosen = strategy.info()
    assert chosen["C"] == 1e-4 and chosen["val_acc_by_C"]["0.0001"] == 100.0
    assert chosen["val_acc_by_C"]["100"] < 100.0  # while test (labelled `strong`) would pick C = 100
    assert torch.equal(model.fc(feats(xv)).argmax(1), torch.as_tensor(weak))  # the chosen fit is the head


def test_feature_extract_folds_standardisation_into_the_head():
    rng = np.random.default_rng(1)
    x = rng.normal(loc=5, scale=3, size=(90, 12))
    y = np.argmax(x[:, :3] + rng.normal(size=(90, 3)), 1)
    model = _HeadOnly(12, 3)
    strategy = FeatureExtract(FeatureExtractParams(C_grid=(1.0,)))
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    strategy.solve_head(model, (t(x), torch.as_tensor(y)), (t(x), torch.as_tensor(y)))
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), y)
    ours = model.fc(t(x)).double()
    assert torch.allclose(ours, torch.as_tensor(reference.decision_function(scaler.transform(x))), atol=1e-3)


def test_knn_head_votes_its_neighbours():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    head = KNNHead(bank, torch.tensor([0, 0, 1]), classes=2, k=1)
    assert head(torch.tensor([[1.0, 0.05], [0.1, 1.0]])).argmax(1).tolist() == [0, 1]


def test_feature_extract_runs_end_to_end_and_records_its_choice(registry, tmp_path):
    text = (SUITE.replace("    adapt: {domain: inverted}\n", "")
            % ("false", "{name: feature-extract, params: {C_grid: [0.01, 1.0]}}"))
    record = run_suite(text, registry, tmp_path)[0]
    assert record["status"] == "ok", record["error"]
    assert record["budget"]["stopped_by"] == "solved" and record["budget"]["used"]["steps"] == 0
    assert record["metrics"]["strategy"]["C"] in (0.01, 1.0)
    assert record["params"]["trainable"] < record["params"]["total"]
    assert record["timing"]["train_s"] > 0


# ---------------------------------------------------------------- report


def test_domain_shift_table_flags_adapted_strategies_and_fits_without_them():
    from ftbench import report as rp
    from tests.fixtures.report_records import make_records

    records = make_records(datasets=("digits",), data=(0, 1, 2))  # 9 runs of full: enough for a reference line
    plain = rp.build_report(records).table("shift")
    for rec in records:
        if rec["cell"]["strategy"] == "scratch":  # pretend it adapted, and shifted far better
            rec["unlabelled"] = {"source": "domain:printed", "n": 300}
            for m in rec["metrics"]["shifted"].values():
                m["acc"] += 20
    table = rp.build_report(records).table("shift")
    assert table.headers[-1] == "Adapted"
    adapted = {row[3]: row[-1] for row in table.rows}
    assert adapted == {"full": "—", "linear-probe": "—", "scratch": "domain:printed"}
    fit_notes = [n for n in table.notes if n.startswith("digits / ")]
    assert fit_notes and all("over 9 reference runs of full" in n for n in fit_notes)  # scratch adapted: left out
    # so the plain rows' effective robustness is what a study without the adapted runs gives
    alone = rp.build_report([r for r in records if not r.get("unlabelled")]).table("shift")
    expected = {(row[2], row[3], row[4]): row[9].mean for row in alone.rows}
    assert {(row[2], row[3], row[4]): row[9].mean for row in table.rows if row[3] != "scratch"} == pytest.approx(expected)
    assert {(row[2], row[3], row[4]): row[9].mean for row in plain.rows if row[3] != "scratch"} != pytest.approx(expected)
