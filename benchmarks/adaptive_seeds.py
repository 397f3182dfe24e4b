"""Adaptive seeds against a fixed design of max seeds, side by side, on the quickstart's
study: its six strategies on digits at its three data amounts (2-shot, 10-shot, all),
pretrained on letters, every strategy compared with `full` per task (15 comparisons).

Two fresh results folders: one with `seeds: {min, max, step, until: decided}`, one
with `max` fixed seeds (the same seeds, so a run both ran has one id and, with the
suite's pinned numerics and one thread per run, the same record: checked). The fixed
design's verdicts are the same tests read once at max seeds (one look at level alpha,
Holm over the task's comparisons, a difference or TOST equivalence). Prints the runs
each ran, the runs saved, each comparison's two verdicts, and whether all agree.

The quickstart's learning-rate search is left out (each strategy at the suite's
`train.lr`) and the budget is `--samples` per run, so both studies fit in minutes.

    python benchmarks/adaptive_seeds.py [--min 3] [--max 10] [--step 2] [--futility 0.1] [--samples 2000]
                                        [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from ftbench.driver.adaptive import PLAN_FILE, replay
from ftbench.driver.suite_run import run_suite
from ftbench.plugins import default_registry
from ftbench.results.records import load_records
from ftbench.results.store import ResultsStore
from ftbench.suite import expand, load_suite

QUICKSTART = Path(__file__).resolve().parent.parent / "suites" / "quickstart.yaml"


def study(seeds, samples: int, name: str) -> dict:
    raw = yaml.safe_load(QUICKSTART.read_text())
    for key in ("search", "primary"):
        raw.pop(key, None)
    return {**raw, "name": name, "seeds": seeds, "budget": {"samples": samples}}


def _load(raw: dict, folder: Path):
    path = folder / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_suite(path, default_registry())


def _run(raw: dict, folder: Path, workers: int) -> tuple[float, Path]:
    suite, registry = _load(raw, folder), default_registry()
    out = folder / raw["name"]
    t0 = time.perf_counter()
    run_suite(suite, registry, out, executor_name="pool", executor_params={"workers": workers}, quiet=True)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min", type=int, default=3)
    ap.add_argument("--max", type=int, default=10)
    ap.add_argument("--step", type=int, default=2)
    ap.add_argument("--futility", type=float, help="stop undecided comparisons whose predictive power is below this")
    ap.add_argument("--samples", type=int, default=2000, help="training samples per run (the budget)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, help="keep both results folders here (default: a temporary folder)")
    args = ap.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="ftbench-adaptive-"))
    folder.mkdir(parents=True, exist_ok=True)
    adaptive = study({"min": args.min, "max": args.max, "step": args.step, "until": "decided",
                      **({"futility": args.futility} if args.futility else {})}, args.samples, "adaptive")
    fixed = study(list(range(args.max)), args.samples, "fixed")
    t_adaptive, out_a = _run(adaptive, folder, args.workers)
    t_fixed, out_f = _run(fixed, folder, args.workers)

    plan = json.loads((out_a / PLAN_FILE).read_text())
    # The fixed design's verdicts: the same tests at one look of max seeds.
    one_look = _load(study({"min": args.max, "max": args.max}, args.samples, "fixed"), folder)
    fixed_plan = replay(one_look, expand(one_look, default_registry()), ResultsStore(out_f).read).to_json()
    recs_a, recs_f = ({r["id"]: r for r in load_records(o, quiet=True)} for o in (out_a, out_f))
    shared = set(recs_a) & set(recs_f)
    same = sum(recs_a[i]["metrics"]["test"] == recs_f[i]["metrics"]["test"] for i in shared)
    key = ("backbone", "dataset", "data", "strategy", "vs")
    fixed_by = {tuple(c[k] for k in key): c for c in fixed_plan["comparisons"]}
    agree = 0
    print(f"{'data':<8} {'strategy':<17} {'adaptive':<26} {'fixed (' + str(args.max) + ' seeds)':<16} "
          f"{'Δ adaptive':>10} {'Δ fixed':>8}")
    for c in plan["comparisons"]:
        f = fixed_by[tuple(c[k] for k in key)]
        a_word = (f"{c['verdict']} at {c['decided_at']}" if c["decided_at"] is not None
                  else f"undecided, futile at {c['futile_at']}" if c.get("futile_at") else f"undecided at {c['n']}")
        ok = c["verdict"] == f["verdict"] and (c["verdict"] != "different" or (c["mean"] > 0) == (f["mean"] > 0))
        agree += ok
        print(f"{c['data']:<8} {c['strategy']:<17} {a_word:<26} {f['verdict']:<16} {c['mean']:>+10.2f} "
              f"{f['mean']:>+8.2f}{'' if ok else '   DIFFERS'}")
    runs = plan["runs"]
    futility = f", futility {args.futility:g}" if args.futility else ""
    print(f"\nadaptive seeds {{min: {args.min}, max: {args.max}, step: {args.step}{futility}}} "
          f"(O'Brien-Fleming spending, Holm per task, alpha {plan['settings']['alpha']}, margin "
          f"{plan['settings']['margin']}): {runs['planned']} runs in {t_adaptive:.0f} s")
    print(f"fixed {args.max} seeds: {len(recs_f)} runs in {t_fixed:.0f} s")
    print(f"runs saved: {runs['saved']} of {runs['max']} ({runs['saved'] / runs['max']:.0%}); verdicts agree: "
          f"{agree} of {len(plan['comparisons'])}; runs in both folders with equal test metrics: {same} of "
          f"{len(shared)}")
    _variants(args, folder, out_f, fixed_by, key)
    print(f"results: {folder}")


def _variants(args, folder: Path, out_f: Path, fixed_by: dict, key: tuple) -> None:
    """Other settings, replayed on the fixed folder's records: the path an adaptive
    study with them takes is a function of the records alone, so this is what it
    would run (given equal records, checked above for the settings that ran)."""
    print("\nother settings, replayed on the fixed study's records (no new runs):")
    for spending, futility in (("obrien-fleming", None), ("pocock", None), ("obrien-fleming", 0.1)):
        for lo, step in ((3, 1), (3, 2), (5, 1)):
            if lo > args.max:
                continue
            seeds = {"min": lo, "max": args.max, "step": step, "spending": spending,
                     **({"futility": futility} if futility else {})}
            suite = _load(study(seeds, args.samples, "fixed"), folder)
            plan = replay(suite, expand(suite, default_registry()), ResultsStore(out_f).read).to_json()
            agree = sum(c["verdict"] == fixed_by[tuple(c[k] for k in key)]["verdict"] for c in plan["comparisons"])
            verdicts = {v: sum(c["verdict"] == v for c in plan["comparisons"])
                        for v in ("different", "equivalent", "undecided")}
            label = spending + (f", futility {futility:g}" if futility else "")
            print(f"  {label:<30} min {lo} step {step}: {plan['runs']['planned']} of {plan['runs']['max']} runs "
                  f"({plan['runs']['saved'] / plan['runs']['max']:.0%} saved), verdicts agree {agree} of "
                  f"{len(plan['comparisons'])}, {verdicts}")


if __name__ == "__main__":
    main()
