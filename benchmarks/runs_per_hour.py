"""How many runs an hour? A small suite through the local process pool at 1 worker
and at N workers, each into a fresh results folder.

The suite is toy-sized real work: scikit-learn's digits (bundled, offline) on a
timm `test_resnet` at 16 px, three strategies x `--seeds` seeds, `--steps` steps
each. The clock covers the whole `run_suite` call, worker start-up included, since
that is what a user waits for. Prints runs/hour at each size and the speed-up.

    python benchmarks/runs_per_hour.py [--workers 2] [--seeds 4] [--steps 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from ftbench.driver.suite_run import run_suite
from ftbench.plugins import default_registry
from ftbench.suite import load_suite


def suite_yaml(seeds: int, steps: int, device: str) -> dict:
    return {
        "name": "runs-per-hour",
        "backbones": [{"name": "timm", "label": "test-resnet",
                       "params": {"model": "test_resnet", "pretrained": "none", "input_size": 16}}],
        "datasets": [{"name": "digits"}],
        "strategies": [{"name": "full"}, {"name": "linear-probe", "train": {"lr": 0.05}},
                       {"name": "bitfit", "train": {"lr": 0.01}}],
        "seeds": list(range(seeds)),
        "data": [{"shots": 10}],
        "budget": {"steps": steps},
        "train": {"lr": 0.005, "batch_size": 32},
        "device": device,
    }


def runs_per_hour(suite, registry, workers: int, folder: Path) -> tuple[float, int]:
    """(runs per hour, runs that finished ok) for one fresh run of the suite."""
    t0 = time.perf_counter()
    outcome = run_suite(suite, registry, folder, executor_name="pool", executor_params={"workers": workers},
                        quiet=True)
    seconds = time.perf_counter() - t0
    ok = len(outcome.records) - len(outcome.failed)
    return len(outcome.records) * 3600 / seconds, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="N, the larger pool")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="cpu", help="the suite's device: cpu, auto, cuda")
    args = ap.parse_args()

    print(f"suite: {3 * args.seeds} runs (3 strategies x {args.seeds} seeds, {args.steps} steps, digits, "
          f"test_resnet 16 px), device {args.device}", flush=True)
    registry = default_registry()
    with tempfile.TemporaryDirectory(prefix="ftbench-rph-") as tmp:
        path = Path(tmp) / "suite.yaml"
        path.write_text(yaml.safe_dump(suite_yaml(args.seeds, args.steps, args.device)))
        suite = load_suite(path, registry)
        rates = {}
        for workers in sorted({1, args.workers}):
            rate, ok = runs_per_hour(suite, registry, workers, Path(tmp) / f"results-{workers}")
            rates[workers] = rate
            print(f"pool, {workers} worker(s): {rate:8.0f} runs/hour  ({ok} runs ok)", flush=True)
    print(f"speed-up at {args.workers} workers: {rates[args.workers] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
