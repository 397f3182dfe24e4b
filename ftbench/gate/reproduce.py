"""`ftbench reproduce REFERENCE`: rerun a results folder and say whether its numbers hold.

    REFERENCE/suite.resolved.yaml --> the same suite, rerun into a fresh folder
      1. selection: the search runs again (trials in RESULTS/trials); per searched
         cell, the values each side selected, agreeing or not
      2. training: the final seeds at the REFERENCE's selected values, so a
         selection that flipped cannot pass for a training difference
    the rule, from the records' fingerprints (ftbench.fingerprint):
      one fingerprint id on both sides -> exact: every seed's test accuracy, loss
          and per-example correctness equal, and every selection the same
      otherwise -> statistical, per cell: no significant drop (one-sided Welch
          t-test, Holm over the cells) and means equivalent within a margin
          (Welch TOST), the margin given or derived from the seeds' spread

Across machines the seeds diverge during training (a last bit becomes a different
prediction after a few hundred steps), so the two sides are treated as independent
samples. A derived margin is the smallest one the seeds can back: TOST at it calls
two sets of seeds drawn from one distribution equivalent 999 times in 1000
(`EQUIVALENCE_MISS`), so a reader sees from its width what the seeds can vouch for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml
from scipy import stats as scipy_stats
from tabulate import tabulate

from ftbench.gate.baseline import CELL_KEYS
from ftbench.gate.compare import SEED_MISMATCH, welch_less
from ftbench.errors import FtbenchError, UserInputError
from ftbench.fingerprint import ID_FIELDS, describe, of_record
from ftbench.stats import holm, tost_welch
from ftbench.results.records import load_records
from ftbench.results.store import RESOLVED_SUITE, ResultsStore

EXACT, STATISTICAL = "exact", "statistical"
EQUIVALENCE_MISS = 0.001  # chance that a derived margin fails one cell of an honest rerun (seeds independent)
DROP = "DROP"
NOT_EQUIVALENT = "NOT EQUIVALENT"
MISSING = "missing"
UNTESTABLE = "n<2: untestable"


# ---------------------------------------------------------------- the judgement


@dataclass
class SelectionRow:
    """One searched cell: the values each side's search selected."""

    cell: tuple[str, ...]
    reference: dict[str, Any]
    rerun: dict[str, Any] | None
    reference_val: float | None = None
    rerun_val: float | None = None

    @property
    def agree(self) -> bool:
        return self.rerun is not None and self.rerun == self.reference


@dataclass
class TrainingRow:
    """One cell's final seeds on both sides and the verdict of the rule."""

    cell: tuple[str, ...]
    reference: dict[int, dict]  # seed -> test metrics
    rerun: dict[int, dict]
    equal_seeds: int = 0
    p_drop: float | None = None
    p_drop_holm: float | None = None
    margin: float | None = None
    p_equivalent: float | None = None
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def accs(self, side: str) -> list[float]:
        values = self.reference if side == "reference" else self.rerun
        return [values[s]["acc"] for s in sorted(values)]

    @property
    def verdict(self) -> str:
        return ", ".join(self.verdicts) or "ok"


@dataclass
class Reproduction:
    rule: str  # EXACT or STATISTICAL
    why: str
    selection: list[SelectionRow]
    training: list[TrainingRow]
    alpha: float
    margin: float | None  # given on the command line; None: derived per cell

    @property
    def selection_fails(self) -> bool:
        """Under one fingerprint a search is deterministic, so a different selection
        fails; across fingerprints a flip is expected now and then, and reported."""
        return self.rule == EXACT and any(not r.agree for r in self.selection)

    @property
    def failed(self) -> bool:
        return self.selection_fails or any(r.verdicts for r in self.training)


def rule_for(reference: list[dict], rerun: list[dict]) -> tuple[str, str]:
    """(EXACT or STATISTICAL, why): exact only when every record on both sides
    carries one and the same fingerprint id."""
    ref = {(fp or {}).get("id") for fp in map(of_record, reference)}
    cur = {(fp or {}).get("id") for fp in map(of_record, rerun)}
    if None in ref:
        return STATISTICAL, ("the reference's records carry no fingerprint (written before ftbench recorded "
                             "one), so nothing shows they ran on this machine's numeric stack")
    if len(ref) == 1 and ref == cur:
        return EXACT, f"reference and rerun share one fingerprint: {describe(of_record(reference[0]))}"
    if len(ref) > 1:
        return STATISTICAL, f"the reference's records come from {len(ref)} fingerprints ({', '.join(sorted(ref))})"
    ref_fp = of_record(reference[0])
    cur_fp = next((fp for fp in map(of_record, rerun) if fp and fp["id"] not in ref), None) or {}
    return STATISTICAL, (f"fingerprints differ: reference {describe(ref_fp)}; rerun {describe(cur_fp or None)}"
                         + (f" (differing: {differences(ref_fp, cur_fp)})" if cur_fp else ""))


def differences(a: dict, b: dict) -> str:
    """The id fields two fingerprints differ in: `cpu.isa avx512+vnni -> avx2; threads 2 -> 1`."""
    out = []
    for key in (*ID_FIELDS, "cpu", "gpu", "cuda", "cudnn"):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += [f"{key}.{k} {x.get(k)} -> {y.get(k)}" for k in sorted(x.keys() | y.keys()) if x.get(k) != y.get(k)]
        elif x != y:
            out.append(f"{key} {x} -> {y}")
    return "; ".join(out) or "none of the recorded fields"


def judge(reference: list[dict], rerun: list[dict], selection: list[SelectionRow] = (), *,
          alpha: float = 0.05, margin: float | None = None) -> Reproduction:
    """Apply the rule the fingerprints call for to the final records of both sides
    (matched by run id: the rerun ran the reference's configurations)."""
    rule, why = rule_for(reference, rerun)
    by_id = {r["id"]: r for r in rerun if r.get("status") == "ok"}
    cells: dict[tuple[str, ...], TrainingRow] = {}
    for record in sorted(reference, key=lambda r: r["seed"]):
        if record.get("status") != "ok":
            continue
        key = tuple(str(record["cell"][k]) for k in CELL_KEYS)
        row = cells.setdefault(key, TrainingRow(key, {}, {}))
        row.reference[record["seed"]] = record["metrics"]["test"]
        if record["id"] in by_id:
            row.rerun[record["seed"]] = by_id[record["id"]]["metrics"]["test"]
    rows = [cells[k] for k in sorted(cells)]
    for row in rows:
        lost = sorted(row.reference.keys() - row.rerun.keys())
        if lost:
            row.verdicts.append(MISSING)
            row.notes.append(f"seed(s) {', '.join(map(str, lost))} did not finish ok in the rerun")
    if rule == EXACT:
        for row in rows:
            _exact(row)
    else:
        _statistical(rows, alpha, margin)
    return Reproduction(rule, why, list(selection), rows, alpha, margin)


def _exact(row: TrainingRow) -> None:
    """Every seed's test accuracy, loss and per-example correctness equal."""
    off = []
    for seed in sorted(row.rerun):
        a, b = row.reference[seed], row.rerun[seed]
        if all(a.get(k) == b.get(k) for k in ("acc", "loss", "correct")):
            row.equal_seeds += 1
        else:
            off.append(f"seed {seed}: {a.get('acc'):.4g} -> {b.get('acc'):.4g}"
                       + (" (loss or per-example results differ)" if a.get("acc") == b.get("acc") else ""))
    if off:
        row.verdicts.append(SEED_MISMATCH)
        row.notes.append("; ".join(off))


def _statistical(rows: list[TrainingRow], alpha: float, margin: float | None) -> None:
    """No significant drop (one-sided Welch, Holm over the testable cells) and
    equivalence within the margin (Welch TOST), per cell."""
    testable = [r for r in rows if len(r.reference) >= 2 and len(r.rerun) >= 2]
    for row in rows:
        if row not in testable and MISSING not in row.verdicts:
            row.verdicts.append(UNTESTABLE)
            row.notes.append("fewer than 2 seeds on a side: no test can tell a difference (run more seeds, or "
                             "reproduce on the reference's fingerprint, where every seed must be equal)")
    for row in testable:
        ref, cur = row.accs("reference"), row.accs("rerun")
        row.equal_seeds = sum(row.reference[s].get("acc") == row.rerun[s].get("acc") for s in row.rerun)
        row.p_drop = welch_less(cur, ref)
        row.margin = margin if margin is not None else derived_margin(ref, cur, alpha)
        row.p_equivalent = tost_welch(cur, ref, row.margin)
        if math.isnan(row.p_equivalent):  # no spread on either side: the difference is certain
            row.p_equivalent = 0.0 if abs(np.mean(cur) - np.mean(ref)) < row.margin else 1.0
    for row, p in zip(testable, holm([r.p_drop for r in testable])):
        row.p_drop_holm = float(p)
        if p < alpha:
            row.verdicts.append(DROP)
        if row.p_equivalent >= alpha:
            row.verdicts.append(NOT_EQUIVALENT)


def derived_margin(reference: list[float], rerun: list[float], alpha: float = 0.05,
                   miss: float = EQUIVALENCE_MISS) -> float:
    """The margin at which Welch's TOST at `alpha` calls two samples of one normal
    seed distribution equivalent with probability 1 - `miss`: (t(1-alpha) +
    t(1-miss/2)) standard errors of the difference, Welch's standard error and
    degrees of freedom (the TOST then passes exactly when a two-sided Welch test at
    `miss` finds no difference). 0 when neither side has any spread."""
    a, b = np.asarray(reference, dtype=float), np.asarray(rerun, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float((scipy_stats.t.ppf(1 - alpha, df) + scipy_stats.t.ppf(1 - miss / 2, df)) * math.sqrt(va + vb))


# ---------------------------------------------------------------- rerunning


def load_reference(reference: Path, registry):
    """The reference's resolved suite and its ok final records."""
    suite_file = reference / RESOLVED_SUITE
    if not suite_file.is_file():
        raise UserInputError(f"{reference} has no {RESOLVED_SUITE}; pass a results folder written by `ftbench run`")
    from ftbench.suite.schema import Suite

    suite = Suite.model_validate(yaml.safe_load(suite_file.read_text()))
    records = load_records(reference)
    if not records:
        raise UserInputError(f"{reference} holds no run records to reproduce")
    return suite, records


def reference_runs(suite, registry, reference: Path, only: dict[str, set[str]]):
    """(the runs at the reference's selected values, {cell: reference selection}),
    replayed from the reference's trial records (ftbench.search.plan_search)."""
    from ftbench.driver.search import TRIALS_FOLDER, cell_key, plan_search
    from ftbench.driver.selection import select_runs
    from ftbench.suite.expand import expand
    from ftbench.suite.tuning import searches

    specs = select_runs(expand(suite, registry), only)
    if not searches(suite):
        return specs, {}
    runs, plans = plan_search(suite, specs, registry, ResultsStore(reference / TRIALS_FOLDER))
    unfinished = [p for p in plans.values() if not p.selected]
    if unfinished:
        raise FtbenchError(f"the reference's search is incomplete: {len(unfinished)} cell(s) lack trial records in "
                           f"{reference / TRIALS_FOLDER} (e.g. {'/'.join(unfinished[0].cell.values())}); reproduce "
                           "a finished results folder")
    return runs, {cell_key(p.cell): p.selection for p in plans.values()}


def selection_rows(reference: dict[tuple, dict], rerun: dict[tuple, dict]) -> list[SelectionRow]:
    return [SelectionRow(key, sel["selected"], (rerun.get(key) or {}).get("selected"), sel.get("val_acc"),
                         (rerun.get(key) or {}).get("val_acc")) for key, sel in sorted(reference.items())]


def reproduce(reference: Path, results: Path, registry, *, seeds: list[int] | None = None,
              only: dict[str, set[str]] | None = None, margin: float | None = None, alpha: float = 0.05,
              resume: bool = False, **run_options: Any) -> Reproduction:
    """Rerun `reference` into `results` (its search, then its final seeds at the
    reference's selected values) and judge the two. `run_options` go to
    `ftbench.driver.run_suite` (executor_name, executor_params, quiet, plugins)."""
    from ftbench.driver.suite_run import run_suite

    only = dict(only or {})
    suite, ref_records = load_reference(reference, registry)
    suite = _with_seeds(suite, seeds)
    if results.resolve() == reference.resolve():
        raise UserInputError("--results must be another folder than the reference")
    if any(results.glob("*.json")) and not resume:
        raise UserInputError(f"{results} already holds run records; remove it, pass another --results, or "
                             "--resume to go on with an interrupted reproduction")
    runs, ref_selected = reference_runs(suite, registry, reference, only)
    ref_by_id = {r["id"]: r for r in ref_records}
    absent = [s for s in runs if s.id not in ref_by_id]
    if absent:
        s = absent[0]
        raise FtbenchError(f"{len(absent)} of {len(runs)} runs have no record in {reference} (e.g. "
                           f"{'/'.join(s.cell.values())} seed {s.seed}, id {s.id}): their configurations changed "
                           "since the reference was made; reproduce with the code that made it, or remake it")
    run_suite(suite, registry, results, only=only, final_runs=lambda _selected_here: runs, **run_options)
    rerun_selected = _selections(suite, registry, results, only) if ref_selected else {}
    ids = {s.id for s in runs}
    return judge([ref_by_id[i] for i in ids], [r for r in load_records(results) if r["id"] in ids],
                 selection_rows(ref_selected, rerun_selected), alpha=alpha, margin=margin)


def _with_seeds(suite, seeds: list[int] | None):
    """The suite with only these of its final seeds (`--seeds`)."""
    if seeds is None:
        return suite
    unknown = sorted(set(seeds) - set(suite.seed_list))
    if unknown:
        raise UserInputError(f"--seeds {','.join(map(str, unknown))}: the reference ran seeds "
                             f"{', '.join(map(str, suite.seed_list))} only")
    return suite.model_copy(update={"seeds": [s for s in suite.seed_list if s in seeds]})


def _selections(suite, registry, results: Path, only: dict[str, set[str]]) -> dict[tuple, dict]:
    """{cell: selection} of the search the rerun ran (its trial records in `results`)."""
    from ftbench.driver.search import TRIALS_FOLDER, cell_key, plan_search
    from ftbench.driver.selection import select_runs
    from ftbench.suite.expand import expand

    _, plans = plan_search(suite, select_runs(expand(suite, registry), only), registry,
                           ResultsStore(results / TRIALS_FOLDER))
    return {cell_key(p.cell): p.selection for p in plans.values() if p.selected}


# ---------------------------------------------------------------- rendering


def _labeller(cells: list[tuple[str, ...]]) -> Callable[[tuple[str, ...]], str]:
    """strategy/data when every cell shares its backbone and dataset, else the whole cell."""
    skip = 2 if len({c[:2] for c in cells}) <= 1 else 0
    return lambda cell: "/".join(cell[skip:])


def _values(selected: dict[str, Any] | None) -> str:
    if selected is None:
        return "-"
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(selected.items())) \
        or "(suite's values)"


def _acc(values: list[float]) -> str:
    if not values:
        return "-"
    sd = f" ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else ""
    return f"{np.mean(values):.2f}{sd} ({len(values)})"


def _p(value: float | None) -> str:
    return "-" if value is None else "<0.001" if value < 0.001 else f"{value:.3f}"


def render(rep: Reproduction) -> str:
    """The selection table, the training table, the rule with why, and the verdict."""
    parts = []
    if rep.selection:
        agree = sum(r.agree for r in rep.selection)
        label = _labeller([r.cell for r in rep.selection])
        rows = [[label(r.cell), _values(r.reference), _values(r.rerun),
                 "-" if r.reference_val is None else f"{r.reference_val:.1f}",
                 "-" if r.rerun_val is None else f"{r.rerun_val:.1f}", "yes" if r.agree else "NO"]
                for r in rep.selection]
        parts += [f"Selection: the search rerun, {agree} of {len(rows)} cells select what the reference selected",
                  tabulate(rows, headers=["cell", "reference", "rerun", "ref val acc", "rerun val acc", "agree"],
                           disable_numparse=True), ""]
    label = _labeller([r.cell for r in rep.training])
    head = ["cell", "reference acc", "rerun acc", "Δ"]
    rows = []
    for r in rep.training:
        ref, cur = r.accs("reference"), r.accs("rerun")
        delta = f"{np.mean(cur) - np.mean(ref):+.2f}" if ref and cur else "-"
        row = [label(r.cell), _acc(ref), _acc(cur), delta]
        if rep.rule == EXACT:
            row += [f"{r.equal_seeds}/{len(r.reference)}"]
        else:
            row += [_p(r.p_drop), _p(r.p_drop_holm), "-" if r.margin is None else f"±{r.margin:.2f}",
                    _p(r.p_equivalent)]
        rows.append(row + [r.verdict])
    head += (["equal seeds"] if rep.rule == EXACT else
             ["p drop", "p (Holm)", "margin", "p ≈ (TOST)"]) + ["verdict"]
    parts += ["Training: the final seeds at the reference's selected values (mean ± sd (seeds) of test acc %)",
              tabulate(rows, headers=head, disable_numparse=True), ""]
    notes = [f"  - {label(r.cell)}: {n}" for r in rep.training for n in r.notes]
    if notes:
        parts += ["Notes:", *notes, ""]
    parts += [f"Rule: {rep.rule}, because {rep.why}.", rule_text(rep), outcome(rep)]
    return "\n".join(parts)


def rule_text(rep: Reproduction) -> str:
    if rep.rule == EXACT:
        return ("Exact: every seed's test accuracy, test loss and per-example correctness must equal the "
                "reference's, and every search must select what the reference selected.")
    margin = (f"±{rep.margin:g} points (--margin)" if rep.margin is not None else
              f"a margin derived per cell from its seeds' spread: the smallest at which the TOST calls two sets "
              f"of seeds drawn from one distribution equivalent {1 - EQUIVALENCE_MISS:.1%} of the time (Welch's "
              "standard error and degrees of freedom)")
    return (f"Statistical: a cell fails on a significant drop (one-sided Welch t-test of rerun < reference, Holm "
            f"over the {sum(r.p_drop is not None for r in rep.training)} tested cells, α = {rep.alpha:g}) or when "
            f"its means are not shown equivalent (Welch TOST, α = {rep.alpha:g}) within {margin}. The seeds of two "
            "machines diverge in training, so they are compared as independent samples. Selections may differ "
            "across machines (a last bit can flip a choice made on a few validation images): reported, not failed; "
            "the training rows use the reference's selections either way.")


def outcome(rep: Reproduction) -> str:
    bad = [r for r in rep.training if r.verdicts]
    flips = sum(not r.agree for r in rep.selection)
    word = "FAIL" if rep.failed else "PASS"
    return (f"{word} ({rep.rule}): {len(rep.training)} cell(s), {len(bad)} failing"
            + (f"; {flips} of {len(rep.selection)} selections differ" if rep.selection else ""))
