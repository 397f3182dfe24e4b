"""Does pruning make a search cheaper without changing what it selects?

Runs the same learning-rate search on the quickstart task (the letters-pretrained
test_resnet fine-tuned on digits) twice, without and with an Optuna pruner, each
in its own results folder (the pretrained backbone is cached and shared). Prints the cost
of each search (training samples seen by its trials, which does not depend on how
busy the machine is, and their training seconds), the cost ratio, and the test
accuracy of each search's selected configuration.
Target: >= 2x cheaper at <= 0.5 point difference.

    python benchmarks/tuning.py [--strategies full,linear-probe] [--shots 10] [--lrs 8] [--pruner median] [--prune-points 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from ftbench.driver.suite_run import run_suite
from ftbench.plugins import default_registry
from ftbench.driver.search import TRIALS_FOLDER
from ftbench.results.records import load_records
from ftbench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]


def search(pruner: str, args, registry, folder: Path) -> dict:
    lrs = [round(10 ** (-4 + 3 * i / (args.lrs - 1)), 6) for i in range(args.lrs)]  # 1e-4 .. 1e-1
    strategies = "[" + ", ".join("{name: %s}" % s for s in args.strategies.split(",")) + "]"
    suite = load_suite(args.suite, registry, (
        f"strategies={strategies}", f"data=[{{shots: {args.shots}}}]", f"seeds=[{args.seeds}]",
        "executor={name: sequential}", f"search={{pruner: {pruner}, prune_points: {args.prune_points}, seeds: [100], "
        f"space: {{train.lr: {{grid: {lrs}}}}}}}"))
    outcome = run_suite(suite, registry, folder, quiet=True)
    if outcome.failed:
        raise SystemExit(f"{len(outcome.failed)} runs failed: {outcome.failed[0].get('error')}")
    finals = [r for r in load_records(folder) if r.get("selection")]
    trials = load_records(folder / TRIALS_FOLDER)
    return {"samples": sum(r["budget"]["used"]["samples"] for r in trials),
            "train_s": sum(r["timing"]["train_s"] for r in trials),
            "pruned": sum(bool(r["metrics"].get("pruned")) for r in trials), "trials": len(trials),
            "selected": {r["cell"]["strategy"]: r["selection"]["selected"].get("train.lr") for r in finals},
            "test": {s: statistics.fmean(r["metrics"]["test"]["acc"] for r in finals if r["cell"]["strategy"] == s)
                     for s in {r["cell"]["strategy"] for r in finals}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "suites" / "quickstart.yaml"))
    parser.add_argument("--strategies", default="full,linear-probe")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--lrs", type=int, default=8, help="learning rates in the grid, 1e-4 to 1e-1")
    parser.add_argument("--seeds", default="0", help="final seeds, comma-separated")
    parser.add_argument("--pruner", default="median", choices=["median", "successive-halving"])
    parser.add_argument("--prune-points", type=int, default=8, help="val checks per trial (search.prune_points; "
                                                                     "the quickstart's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as one of the quickstart's "
                                                                   "two pool workers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    registry = default_registry()
    with tempfile.TemporaryDirectory() as tmp:
        plain = search("none", args, registry, Path(tmp) / "plain")
        pruned = search(args.pruner, args, registry, Path(tmp) / "pruned")
    print(f"search: {args.lrs} learning rates x {args.strategies} at {args.shots} shots, final seeds [{args.seeds}], "
          f"{args.prune_points} val checks per trial")
    for name, r in (("no pruner", plain), (args.pruner, pruned)):
        print(f"  {name:<20} trials {r['trials']:>3} (pruned {r['pruned']}), samples {r['samples']:>8}, "
              f"train {r['train_s']:7.1f} s, selected lr {r['selected']}, test acc "
              + ", ".join(f"{s} {a:.1f}%" for s, a in sorted(r["test"].items())))
    ratio = plain["samples"] / max(pruned["samples"], 1)
    diff = max(abs(plain["test"][s] - pruned["test"][s]) for s in plain["test"])
    print(f"cost ratio (samples): {ratio:.2f}x; (train seconds, noisy): "
          f"{plain['train_s'] / max(pruned['train_s'], 1e-9):.2f}x; largest test acc difference: {diff:.2f} pt "
          f"(target >= 2x at <= 0.5 pt: {'met' if ratio >= 2 and diff <= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
