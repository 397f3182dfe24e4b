"""The accuracy gate with more seeds where a drop is ambiguous (`more_seeds:`,
`ftbench compare --max-seeds`): the sequential judgement's error rates against the
fixed 3-seed Welch gate, and end to end, seeds added to the ambiguous cell only."""

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.errors import UserInputError
from ftbench.gate.compare import welch_less
from ftbench.gate.more_seeds import MoreSeeds, judge
from ftbench.stats.sequential import t_design
from ftbench.gate.tolerances import load_tolerances
from ftbench.results.records import load_records

PLAN = MoreSeeds(3, 10, 1)
REPS = 20_000


def _gate(delta: float, sd: float, acc_drop: float, rng) -> tuple[np.ndarray, np.ndarray, float]:
    """REPS simulated cells: per seed, current - baseline = delta + noise (sd). Returns
    each cell's sequential verdict (a look at every seed from 3 to 10, stopping at the
    first that is not ambiguous), the seeds it used, and the fixed 3-seed Welch gate's
    flag rate on independent cells (each side's seed noise sd / √2, so that their
    difference has sd `sd`). `judge` is checked against this vectorised copy below."""
    base = rng.normal(80, sd / math.sqrt(2), (REPS, PLAN.max))
    diffs = delta + rng.normal(0, sd / math.sqrt(2), (REPS, PLAN.max)) + rng.normal(0, sd / math.sqrt(2),
                                                                                   (REPS, PLAN.max))
    verdicts, used = np.full(REPS, "ambiguous", dtype=object), np.full(REPS, PLAN.max)
    open_ = np.ones(REPS, dtype=bool)
    critical = t_design(PLAN.looks, 0.05, "obrien-fleming", 1).critical
    for k, n in enumerate(PLAN.looks):
        y = diffs[:, :n]
        mean, half = y.mean(axis=1), critical[k] * y.std(axis=1, ddof=1) / math.sqrt(n)
        now = np.where((mean + half < 0) & (mean < -acc_drop), "regression",
                       np.where(mean - half > -acc_drop, "pass", "ambiguous"))
        stop = open_ & (now != "ambiguous")
        verdicts[stop], used[stop] = now[stop], n
        open_ &= ~stop
    for i in range(20):  # the vectorised copy is `judge`
        n = int(used[i])
        assert judge(diffs[i, :n], acc_drop, 0.05, PLAN).verdict == verdicts[i]
    b3 = base[:, :3]
    c3 = rng.normal(80 + delta, sd / math.sqrt(2), (REPS, 3))
    var = b3.var(axis=1, ddof=1) / 3 + c3.var(axis=1, ddof=1) / 3
    df = var ** 2 / ((b3.var(axis=1, ddof=1) / 3) ** 2 / 2 + (c3.var(axis=1, ddof=1) / 3) ** 2 / 2)
    p = sps.t.cdf((c3.mean(axis=1) - b3.mean(axis=1)) / np.sqrt(var), df)  # Welch, one-sided (current < baseline)
    fixed = float(np.mean((b3.mean(axis=1) - c3.mean(axis=1) > acc_drop) & (p < 0.05)))
    assert math.isclose(p[0], welch_less(list(c3[0]), list(b3[0])), rel_tol=1e-9)
    return verdicts, used, fixed


def _se(p: float) -> float:
    return math.sqrt(p * (1 - p) / REPS)


def test_a_planted_1_point_drop_is_resolved_by_more_seeds_and_unchanged_code_passes():
    """Tolerance 0.5 points, sd of a seed's difference 0.7 points: the fixed 3-seed
    Welch gate catches a real 1-point drop only part of the time (it flakes); the
    sequential gate, adding seeds up to 10, flags it nearly always, never passes it
    wrongly more than α, and passes unchanged code (Δ 0) with at most α false alarms."""
    rng = np.random.default_rng(27)
    drop, used, fixed_rate = _gate(-1.0, 0.7, 0.5, rng)
    caught = float(np.mean(drop == "regression"))
    same, used_same, fixed_false = _gate(0.0, 0.7, 0.5, rng)
    false_alarm = float(np.mean(same == "regression"))
    edge, _, _ = _gate(-0.5, 0.7, 0.5, rng)  # exactly at the tolerance: a pass here is a false pass
    false_pass = float(np.mean(edge == "pass"))
    print(f"\n1-point drop: sequential flags {caught:.3f} ± {_se(caught):.3f} (mean seeds {used.mean():.1f}), "
          f"the fixed 3-seed Welch gate {fixed_rate:.3f}; unchanged: false alarms {false_alarm:.4f} (fixed "
          f"{fixed_false:.4f}), passed {np.mean(same == 'pass'):.3f} with {used_same.mean():.1f} seeds; "
          f"at the tolerance: false pass {false_pass:.4f}")
    assert caught >= 0.95 and fixed_rate < 0.8
    assert false_alarm <= 0.05 + 3 * _se(0.05) and false_pass <= 0.05 + 3 * _se(0.05)
    assert np.mean(same != "regression") >= 0.95  # ambiguous at max passes too


def test_identical_runs_pass_at_the_first_look_and_bad_config_is_refused():
    j = judge(np.zeros(3), 1.0, 0.05, PLAN)
    assert (j.verdict, j.low, j.high) == ("pass", 0.0, 0.0)
    assert judge(np.array([-2.0, -2.0, -2.0]), 1.0, 0.05, PLAN).verdict == "regression"  # every seed 2 points down
    assert load_tolerances(more_seeds={"min": 3, "max": 6, "step": 2}).more_seeds.looks == (3, 5, 6)
    for bad in ({"min": 3, "max": 2}, {"min": 3, "mx": 6}, {"min": 3.5, "max": 6}, [3, 10]):
        with pytest.raises(UserInputError, match="more_seeds"):
            load_tolerances(more_seeds=bad)


SUITE = """
name: gate
backbones: [{name: toy-timm}]
datasets: [{name: toy}]
strategies: [{name: toy-full, label: full}, {name: toy-full, label: sgd, train: {optimizer: sgd, lr: 0.05}}]
seeds: SEEDS
budget: {steps: 3}
train: {batch_size: 16}
"""



def invoke(*args):
    return CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", *args], obj={})


@pytest.mark.slow
def test_compare_adds_seeds_to_the_ambiguous_cell_only(tmp_path):
    """A baseline of 5 seeds, the current run on 3; the baseline's 'sgd' cell is
    doctored to look about 1 point better with noise, so the current's looks like an
    ambiguous 1-point drop: compare runs its seeds 3 and 4, and no other cell's."""
    for name, seeds in (("base", "[0, 1, 2, 3, 4]"), ("cur", "[0, 1, 2]")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(SUITE.replace("SEEDS", seeds))
        result = invoke("run", str(path), "--results", str(tmp_path / name), "-q")
        assert result.exit_code == 0, result.output
    saved = invoke("baseline", "save", str(tmp_path / "base"), "-o", str(tmp_path / "b.json"))
    assert saved.exit_code == 0, saved.output
    data = json.loads((tmp_path / "b.json").read_text())
    cell = next(c for c in data["cells"] if c["cell"]["strategy"] == "sgd")
    cell["metrics"]["acc"] = [a + d for a, d in zip(cell["metrics"]["acc"], [1.5, 0.2, 1.9, 0.4, 1.3])]
    (tmp_path / "b.json").write_text(json.dumps(data))
    (tmp_path / "gate.yaml").write_text("acc_drop: 0.5\nmore_seeds: {min: 3, max: 5, step: 1}\nspeed_ratio: 0.01\n")
    result = invoke("compare", str(tmp_path / "b.json"), str(tmp_path / "cur"), "--config", str(tmp_path / "gate.yaml"))
    assert result.exit_code in (0, 1), result.output
    seeds = {(r["cell"]["strategy"], r["seed"]) for r in load_records(tmp_path / "cur")}
    assert {("sgd", 3), ("sgd", 4)} <= seeds and not {("full", 3), ("full", 4)} & seeds
    assert "interval (sequential)" in result.output and "n=5" in result.output
    status = invoke("status", str(tmp_path / "cur"))  # the folder's suite now plans the added runs
    assert status.exit_code == 0 and "orphaned       0" in status.output, status.output
