"""Selection regret on the quickstart: what choosing hyperparameters on the few
labelled validation examples costs in test accuracy, against the ORACLE that
chooses on test (DomainBed's test-domain oracle: optimistic, for reference only;
never a result of the suite and never in its main tables).

Runs the suite twice into its own folders (or reads folders already run):
`search.select: validation` (the suite as shipped) and `search.select: oracle`
(the same trials, also scored on test, the best mean test accuracy selected).
Per searched cell it prints the validation-selected and the oracle-selected
values, the mean test accuracy of the final seeds at each, the regret (oracle
minus validation, points) and the validation selection's P(selected), so you can
see whether the uncertain cells are the ones that cost accuracy.

    python benchmarks/selection_regret.py [--suite suites/quickstart.yaml] [--out DIR] [-j 2]
        [--override search.folds=2 ...]          # another protocol, e.g. cross-validated
    python benchmarks/selection_regret.py --validation results/quickstart --oracle DIR   # no training
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(suite: str, folder: Path, overrides: list[str], jobs: int) -> float:
    """Run the suite into `folder` with `ftbench run` (resumes a folder run before); wall seconds."""
    cmd = [sys.executable, "-m", "ftbench", "run", suite, "--results", str(folder), "--quiet", "-j", str(jobs)]
    for o in overrides:
        cmd += ["-o", o]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def _confidences(folder: Path) -> dict[tuple, dict]:
    """Cell -> its search's trials as `selection_confidence` takes them, read from the
    trial records (so P(selected) is this code's, whatever code ran the search)."""
    from ftbench.driver.search import TRIALS_FOLDER
    from ftbench.results.records import load_records

    trials: dict[tuple, dict[str, dict]] = {}
    for rec in load_records(folder / TRIALS_FOLDER, quiet=True):
        key = tuple(rec["cell"][k] for k in ("backbone", "dataset", "data", "strategy"))
        values = rec["config"]["trial"]["params"]
        entry = trials.setdefault(key, {}).setdefault(json.dumps(values, sort_keys=True), {
            "values": values, "records": [], "state": "complete"})
        entry["records"].append(rec)
        if rec.get("status") != "ok":
            entry["state"] = "fail"
        elif (rec.get("metrics") or {}).get("pruned") and entry["state"] == "complete":
            entry["state"] = "pruned"
    for by_number in trials.values():
        for t in by_number.values():
            accs = [r["metrics"]["val"]["acc"] for r in t["records"] if t["state"] != "fail"]
            t["value"] = t["stopped_at"] = statistics.fmean(accs) if accs else None
    return trials


def _cells(folder: Path) -> dict[tuple, dict]:
    """Cell -> {selected values, mean test accuracy over the final seeds, P(selected), seeds}."""
    from ftbench.results.records import load_records
    from ftbench.results.selection import selection_confidence

    trials = _confidences(folder)
    out: dict[tuple, dict] = {}
    for rec in load_records(folder, quiet=True):
        sel = rec.get("selection")
        acc = ((rec.get("metrics") or {}).get("test") or {}).get("acc")
        if rec.get("status") != "ok" or not sel or acc is None:
            continue
        key = tuple(rec["cell"][k] for k in ("backbone", "dataset", "data", "strategy"))
        if key not in out and sel.get("select") != "oracle" and key in trials:
            numbered = [trials[key][json.dumps(t["values"], sort_keys=True)] | {"number": t["number"]}
                        for t in sel.get("trial_results", []) if json.dumps(t["values"], sort_keys=True)
                        in trials[key]]  # the search's trial numbers (its tie-break), from the selection
            conf = selection_confidence(numbered, sel.get("trial")) or {}
        else:
            conf = {}
        cell = out.setdefault(key, {"selected": sel["selected"], "accs": [], "p": conf.get("selected_p"),
                                    "runner_up": conf.get("runner_up")})
        cell["accs"].append(acc)
    return out


def _lr(values: dict) -> str:
    return ", ".join(f"{k.partition('.')[2]}={v:g}" for k, v in sorted(values.items()))


def regret_table(validation: Path, oracle: Path, threshold: float = 0.8) -> tuple[list[str], dict]:
    """Markdown lines of the regret table, and a summary."""
    val, orc = _cells(validation), _cells(oracle)
    lines = ["| Data | Strategy | Selected (validation) | P(selected) | Test acc | ORACLE selected | ORACLE test acc "
             "| Regret (pt) |", "|---|---|---|---:|---:|---|---:|---:|"]
    regrets, uncertain, certain, same = [], [], [], 0
    for key in sorted(val, key=lambda k: (k[2], k[3])):
        if key not in orc:
            continue
        v, o = val[key], orc[key]
        va, oa = statistics.fmean(v["accs"]), statistics.fmean(o["accs"])
        regret = oa - va
        regrets.append(regret)
        same += v["selected"] == o["selected"]
        flag = v["p"] is not None and v["p"] < threshold
        (uncertain if flag else certain).append(regret)
        p = "n/a" if v["p"] is None else f"{v['p']:.2f}" + (" §" if flag else "")
        lines.append(f"| {key[2]} | {key[3]} | {_lr(v['selected'])} | {p} | {va:.1f} | {_lr(o['selected'])} | "
                     f"{oa:.1f} | {regret:+.1f} |")
    summary = {"cells": len(regrets), "same_choice": same,
               "mean_regret": statistics.fmean(regrets) if regrets else None,
               "uncertain": len(uncertain),
               "mean_regret_uncertain": statistics.fmean(uncertain) if uncertain else None,
               "mean_regret_certain": statistics.fmean(certain) if certain else None}
    return lines, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "suites" / "quickstart.yaml"))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "regret",
                        help="where the two runs go (validation/, oracle/)")
    parser.add_argument("--validation", type=Path, help="a folder already run with validation selection")
    parser.add_argument("--oracle", type=Path, help="a folder already run with `search.select: oracle`")
    parser.add_argument("--override", action="append", default=[], help="suite override for both runs (-o)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.8, help="P(selected) below this is uncertain (§)")
    args = parser.parse_args()
    walls = {}
    validation = args.validation or args.out / "validation"
    oracle = args.oracle or args.out / "oracle"
    if args.validation is None:
        walls["validation"] = _run(args.suite, validation, args.override, args.jobs)
    if args.oracle is None:
        walls["oracle"] = _run(args.suite, oracle, [*args.override, "search.select=oracle"], args.jobs)
    lines, summary = regret_table(validation, oracle, args.threshold)
    print("Selection regret: validation-selected vs ORACLE-selected (chosen on test: optimistic, reference only) "
          "test accuracy, mean over the final seeds")
    print("\n".join(lines))
    print(f"\ncells: {summary['cells']}; same choice as the oracle: {summary['same_choice']}; mean regret "
          f"{summary['mean_regret']:+.2f} pt" if summary["mean_regret"] is not None else "no cell in both folders")
    if summary["uncertain"]:
        certain = summary["mean_regret_certain"]
        print(f"uncertain cells (§, P(selected) < {args.threshold:g}): {summary['uncertain']}, mean regret "
              f"{summary['mean_regret_uncertain']:+.2f} pt; the others "
              + ("n/a" if certain is None else f"{certain:+.2f} pt"))
    for name, wall in walls.items():
        print(f"{name} run: {wall:.0f} s wall")


if __name__ == "__main__":
    main()
