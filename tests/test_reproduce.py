"""`ftbench reproduce`: the rule follows the fingerprints (exact on one, statistical
across), selection is judged apart from training, and both rules can fail."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.gate.reproduce import (DROP, EXACT, NOT_EQUIVALENT, STATISTICAL, UNTESTABLE, SelectionRow, derived_margin,
                               judge, render)
from ftbench.results.records import load_records

CELLS = {"full": 1.0, "freeze": 1.5, "linear-probe": 2.0, "lp-ft": 1.2}  # strategy -> seed sd (points)


def record(strategy: str, seed: int, acc: float, fp: str | None, loss: float | None = None) -> dict:
    env = {"fingerprint": {"id": fp, "threads": 1, "numerics": {"mode": "portable"}}} if fp else {}
    return {"id": f"{strategy}-{seed}", "status": "ok", "seed": seed, "env": env,
            "cell": {"backbone": "b", "dataset": "d", "strategy": strategy, "data": "all"},
            "metrics": {"test": {"acc": acc, "loss": acc / 100 if loss is None else loss}}}


def side(fp: str | None, rng: np.random.Generator, shift: dict[str, float] | None = None) -> list[dict]:
    """5 seeds per cell drawn around 90%: what a machine whose seeds diverge gives."""
    shift = shift or {}
    return [record(s, seed, float(rng.normal(90, sd)) + shift.get(s, 0.0), fp)
            for s, sd in CELLS.items() for seed in range(5)]


def test_one_fingerprint_demands_every_seed_equal_and_every_selection_the_same():
    reference = side("aaa", np.random.default_rng(0))
    rerun = [dict(r) for r in reference]
    same = judge(reference, rerun, [SelectionRow(("b", "d", "full", "all"), {"train.lr": 0.01}, {"train.lr": 0.01})])
    assert same.rule == EXACT and "share one fingerprint" in same.why and not same.failed
    assert [r.equal_seeds for r in same.training] == [5, 5, 5, 5]

    rerun[3] = {**rerun[3], "metrics": {"test": {**rerun[3]["metrics"]["test"], "loss": 0.123}}}  # same acc
    moved = judge(reference, rerun)
    assert moved.failed and moved.training[1].verdicts == ["SEED MISMATCH"]  # cells sorted: freeze, full, ...
    assert "seed 3" in moved.training[1].notes[0] and "loss or per-example results differ" in moved.training[1].notes[0]

    flipped = judge(reference, reference, [SelectionRow(("b", "d", "full", "all"), {"train.lr": 0.01},
                                                        {"train.lr": 0.03})])
    assert flipped.failed and flipped.selection_fails  # one stack, one search: a flip is a bug


def test_a_foreign_fingerprint_gets_the_statistical_rule_which_passes_a_fair_rerun_and_fails_a_3_point_drop():
    reference = side("aaa", np.random.default_rng(1))
    fair = judge(reference, side("bbb", np.random.default_rng(2)),
                 [SelectionRow(("b", "d", "full", "all"), {"train.lr": 0.01}, {"train.lr": 0.03})])
    assert fair.rule == STATISTICAL and fair.why.startswith("fingerprints differ")
    assert not fair.failed, render(fair)  # a selection flip across machines is reported, not failed
    assert all(r.p_drop is not None and r.margin > 0 and r.p_equivalent < 0.05 for r in fair.training)
    assert "1 of 1 selections differ" in render(fair) and "PASS (statistical)" in render(fair)

    planted = judge(reference, side("bbb", np.random.default_rng(2), shift={"full": -3.0}))
    assert planted.failed
    verdicts = {r.cell[2]: r.verdicts for r in planted.training}
    assert DROP in verdicts["full"] and all(not v for s, v in verdicts.items() if s != "full")
    assert "FAIL (statistical): 4 cell(s), 1 failing" in render(planted)

    tight = judge(reference, side("bbb", np.random.default_rng(2)), margin=0.2)  # --margin: too tight to show
    assert all(NOT_EQUIVALENT in r.verdicts for r in tight.training) and "±0.2 points (--margin)" in render(tight)


def test_records_without_a_fingerprint_or_with_too_few_seeds_cannot_be_judged_exactly():
    reference = side(None, np.random.default_rng(3))
    rep = judge(reference, [dict(r, env={"fingerprint": {"id": "aaa"}}) for r in reference])
    assert rep.rule == STATISTICAL and "carry no fingerprint" in rep.why and not rep.failed
    one = judge(reference[:1], side("bbb", np.random.default_rng(4))[:1])
    assert one.failed and one.training[0].verdicts == [UNTESTABLE]


def test_the_derived_margin_passes_999_fair_reruns_in_1000():
    """A TOST at the derived margin calls two samples of one distribution equivalent
    with probability 0.999 (simulated: 5 seeds a side)."""
    from ftbench.stats import tost_welch

    rng = np.random.default_rng(0)
    draws = [(rng.normal(90, 2, 5), rng.normal(90, 2, 5)) for _ in range(3000)]
    passed = np.mean([tost_welch(b, a, derived_margin(a, b)) < 0.05 for a, b in draws])
    assert 0.995 < passed <= 1.0
    a, b = [90.0, 91.0, 92.0], [90.5, 91.5, 89.5]
    se = np.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 3)
    assert derived_margin(a, b) == pytest.approx((2.132 + 8.610) * se, rel=0.01)  # t quantiles at df = 4


SUITE = """
name: rep
backbones: [{name: toy-timm}]
datasets: [{name: toy, params: {n_per_class: 8}}]
strategies: [{name: toy-full}]
seeds: [0, 1, 2]
budget: {steps: 2}
train: {batch_size: 16}
search: {seeds: [0], space: {train.lr: {grid: [0.001, 0.01]}}}
threads: 1
"""


def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


def test_reproduce_reruns_the_search_and_the_references_runs(tmp_path):
    suite, ref = tmp_path / "rep.yaml", tmp_path / "ref"
    suite.write_text(SUITE)
    assert invoke("run", str(suite), "--results", str(ref), "-q").exit_code == 0
    out = invoke("reproduce", str(ref), "--results", str(tmp_path / "a"), "-q")
    assert out.exit_code == 0, out.output
    assert "Selection: the search rerun, 1 of 1 cells select what the reference selected" in out.output
    assert "Rule: exact, because reference and rerun share one fingerprint" in out.output
    assert "PASS (exact): 1 cell(s), 0 failing" in out.output
    assert {r["id"] for r in load_records(tmp_path / "a")} == {r["id"] for r in load_records(ref)}

    again = invoke("reproduce", str(ref), "--results", str(tmp_path / "a"))
    assert again.exit_code == 2 and "already holds run records" in again.output
    assert invoke("reproduce", str(ref), "--seeds", "7").exit_code == 2

    for path in ref.glob("*.json"):  # as if the reference came from another machine
        data = json.loads(path.read_text())
        data["env"]["fingerprint"]["id"] = "0123456789ab"
        path.write_text(json.dumps(data))
    foreign = invoke("reproduce", str(ref), "--results", str(tmp_path / "b"), "--seeds", "0,1", "-q")
    assert "Rule: statistical, because fingerprints differ: reference 0123456789ab" in foreign.output, foreign.output
    assert len(load_records(tmp_path / "b")) == 2  # --seeds: the final runs of seeds 0 and 1 only
